/// A restricted reader of Python pickles: the binary opcodes (protocols 2–5) that a PyTorch
/// state dict uses, and nothing that could run code.
///
/// A pickle is a program for a stack machine; Python's unpickler imports any `module.name` the
/// program asks for (`GLOBAL`) and calls it (`REDUCE`), which is how a `.pt` file can run
/// `os.system`. This reader executes nothing: a global is checked against an allow-list the
/// moment it is named and refused with its `module.name` otherwise; an allowed global is only a
/// symbol (`PickleValue.global`), and `REDUCE` records the call (`PickleValue.call`) for the
/// caller to interpret (`PyTorchFile` turns `_rebuild_tensor_v2` calls into tensors).
/// `collections.OrderedDict()` is the one call evaluated here: it becomes an empty dict.
///
/// Every read is bounds-checked, nesting is limited and the memo is bounded, so a truncated or
/// altered pickle is refused with a reason (`PickleError`), never a crash.
public indirect enum PickleValue: CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer too large for Int64, as its little-endian two's-complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// An allowed global, named `module.name` (never imported or called).
    case global(String)
    /// `callable(*arguments)`, recorded, not executed.
    case call(String, [PickleValue])
    /// The argument of a `BINPERSID`: PyTorch's reference to a storage record.
    case persistent(PickleValue)

    public var description: String {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt(let b): return "<\(b.count)-byte int>"
        case .float(let d): return String(d)
        case .string(let s): return "'\(s.prefix(60))'"
        case .bytes(let b): return "<\(b.count) bytes>"
        case .tuple(let t): return "tuple of \(t.count)"
        case .list(let l): return "list of \(l.items.count)"
        case .dict(let d): return "dict of \(d.entries.count)"
        case .global(let g): return g
        case .call(let f, _): return "\(f)(…)"
        case .persistent: return "persistent id"
        }
    }
}

/// A pickled list; a class because a pickle fills a list after memoizing it (APPENDS after BINPUT).
public final class PickleList { public var items: [PickleValue] = [] }
/// A pickled dict, in insertion order (as OrderedDict and Python 3.7+ dicts keep it).
public final class PickleDict { public var entries: [(key: PickleValue, value: PickleValue)] = [] }

public struct PickleError: Error, CustomStringConvertible, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

public struct Unpickler {
    /// Globals the pickle may name, as `module.name`.
    public let allowedGlobals: Set<String>
    /// Nesting (tuples in tuples…) beyond which a pickle is refused; a state dict needs about 5.
    public static let maxDepth = 64
    /// Memo entries beyond which a pickle is refused (a state dict memoizes a few per tensor).
    public static let maxMemo = 1 << 20

    public init(allowedGlobals: Set<String>) { self.allowedGlobals = allowedGlobals }

    /// Runs the pickle that starts at `start` in `bytes` up to its STOP; returns the value and
    /// the offset just after STOP (a legacy `.pt` file holds several pickles in a row).
    /// - Complexity: O(pickle length).
    public func load(_ bytes: [UInt8], from start: Int = 0) throws -> (value: PickleValue, end: Int) {
        var reader = PickleByteReader(bytes: bytes, position: start)
        // Each value with its nesting depth, so depth checks cost O(1) per item.
        var stack: [Item] = []
        var marks: [Int] = []
        var memo: [Int: Item] = [:]
        /// Every list and dict made, so cycles (a list appended to itself) can be broken afterwards.
        var containers: [AnyObject] = []
        defer {
            for case let l as PickleList in containers { l.items.removeAll() }
            for case let d as PickleDict in containers { d.entries.removeAll() }
        }

        func pop() throws -> Item {
            guard let v = stack.popLast() else { throw PickleError("stack underflow at byte \(reader.position)") }
            if let m = marks.last, stack.count < m { throw PickleError("an opcode reached below its MARK at byte \(reader.position)") }
            return v
        }
        func popMark() throws -> [Item] {
            guard let m = marks.popLast() else { throw PickleError("no MARK for an opcode at byte \(reader.position)") }
            let items = Array(stack[m...])
            stack.removeSubrange(m...)
            return items
        }
        func push(_ v: PickleValue, containing items: [Item] = []) throws {
            let depth = items.isEmpty ? 0 : 1 + (items.map(\.depth).max() ?? 0)
            guard depth <= Unpickler.maxDepth else { throw PickleError("values nested deeper than \(Unpickler.maxDepth) levels") }
            stack.append(Item(value: v, depth: depth))
        }
        func pushContainer(_ v: PickleValue) { stack.append(Item(value: v, depth: 1)) }
        func memoize(_ index: Int) throws {
            guard let top = stack.last else { throw PickleError("memoizing an empty stack at byte \(reader.position)") }
            guard index >= 0, index < Unpickler.maxMemo else { throw PickleError("memo index \(index) out of range") }
            memo[index] = top
        }
        func fetch(_ index: Int) throws -> Item {
            guard let v = memo[index] else { throw PickleError("memo entry \(index) read before it was written") }
            return v
        }
        func global(_ module: String, _ name: String) throws -> PickleValue {
            let full = module + "." + name
            guard allowedGlobals.contains(full) else {
                throw PickleError("refused global \(full): not something a state dict holds (a pickled class or function would run code in Python; mge runs none)")
            }
            return .global(full)
        }
        func setItems(_ target: PickleValue, _ items: [Item]) throws {
            guard case .dict(let d) = target else { throw PickleError("SETITEM(S) on a \(target), not a dict") }
            guard items.count % 2 == 0 else { throw PickleError("SETITEMS with an odd number of items") }
            for item in items where item.depth >= Unpickler.maxDepth { throw PickleError("values nested deeper than \(Unpickler.maxDepth) levels") }
            for i in stride(from: 0, to: items.count, by: 2) { d.entries.append((items[i].value, items[i + 1].value)) }
        }
        func append(_ target: PickleValue, _ items: [Item]) throws {
            guard case .list(let l) = target else { throw PickleError("APPEND(S) on a \(target), not a list") }
            for item in items where item.depth >= Unpickler.maxDepth { throw PickleError("values nested deeper than \(Unpickler.maxDepth) levels") }
            l.items += items.map(\.value)
        }

        while true {
            let at = reader.position
            let op = try reader.byte("an opcode")
            switch op {
            case 0x80: // PROTO
                let version = try reader.byte("the protocol number")
                guard version >= 2, version <= 5 else { throw PickleError("pickle protocol \(version) (2–5 supported)") }
            case 0x95: _ = try reader.bytes(8, "a FRAME length") // FRAME: a hint for buffered readers
            case 0x2E: // STOP
                guard marks.isEmpty else { throw PickleError("STOP with an open MARK") }
                guard stack.count == 1, let result = stack.last else { throw PickleError("STOP with \(stack.count) values on the stack, 1 expected") }
                return (try detached(result.value), reader.position)
            case 0x28: marks.append(stack.count) // MARK
            case 0x30: _ = try pop() // POP
            case 0x31: _ = try popMark() // POP_MARK
            case 0x32: // DUP
                guard let top = stack.last else { throw PickleError("DUP on an empty stack") }
                stack.append(top)
            case 0x4E: try push(.none) // NONE
            case 0x88: try push(.bool(true)) // NEWTRUE
            case 0x89: try push(.bool(false)) // NEWFALSE
            case 0x4B: try push(.int(Int64(try reader.byte("a BININT1")))) // BININT1
            case 0x4D: try push(.int(Int64(try reader.uint(2, "a BININT2")))) // BININT2
            case 0x4A: try push(.int(Int64(Int32(truncatingIfNeeded: try reader.uint(4, "a BININT"))))) // BININT
            case 0x8A, 0x8B: // LONG1, LONG4
                let n = op == 0x8A ? Int(try reader.byte("a LONG1 length")) : Int(try reader.uint(4, "a LONG4 length"))
                guard n <= 1 << 16 else { throw PickleError("a \(n)-byte integer") }
                try push(Unpickler.integer(try reader.bytes(n, "a LONG's digits")))
            case 0x47: // BINFLOAT, big-endian
                let raw = try reader.bytes(8, "a BINFLOAT")
                try push(.float(Double(bitPattern: raw.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case 0x58, 0x8C, 0x8D, 0x54, 0x55: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING
                let width = op == 0x8C || op == 0x55 ? 1 : (op == 0x8D ? 8 : 4)
                let n = try reader.length(width, "a string length")
                let raw = try reader.bytes(n, "a string")
                guard let s = String(validating: raw, as: UTF8.self) else { throw PickleError("a string that is not UTF-8 at byte \(at)") }
                try push(.string(s))
            case 0x42, 0x43, 0x8E: // BINBYTES, SHORT_BINBYTES, BINBYTES8
                let width = op == 0x43 ? 1 : (op == 0x8E ? 8 : 4)
                try push(.bytes(try reader.bytes(try reader.length(width, "a bytes length"), "bytes")))
            case 0x29: try push(.tuple([])) // EMPTY_TUPLE
            case 0x85, 0x86, 0x87: // TUPLE1-3
                let n = Int(op - 0x84)
                var items: [Item] = []
                for _ in 0 ..< n { items.insert(try pop(), at: 0) }
                try push(.tuple(items.map(\.value)), containing: items)
            case 0x74: // TUPLE
                let items = try popMark()
                try push(.tuple(items.map(\.value)), containing: items)
            case 0x5D, 0x6C: // EMPTY_LIST, LIST
                let l = PickleList()
                containers.append(l)
                if op == 0x6C { try append(.list(l), try popMark()) }
                pushContainer(.list(l))
            case 0x7D, 0x64: // EMPTY_DICT, DICT
                let d = PickleDict()
                containers.append(d)
                if op == 0x64 { try setItems(.dict(d), try popMark()) }
                pushContainer(.dict(d))
            case 0x61: // APPEND
                let item = try pop()
                guard let target = stack.last else { throw PickleError("APPEND with no list") }
                try append(target.value, [item])
            case 0x65: // APPENDS
                let items = try popMark()
                guard let target = stack.last else { throw PickleError("APPENDS with no list") }
                try append(target.value, items)
            case 0x73: // SETITEM
                let value = try pop(), key = try pop()
                guard let target = stack.last else { throw PickleError("SETITEM with no dict") }
                try setItems(target.value, [key, value])
            case 0x75: // SETITEMS
                let items = try popMark()
                guard let target = stack.last else { throw PickleError("SETITEMS with no dict") }
                try setItems(target.value, items)
            case 0x71: try memoize(Int(try reader.byte("a BINPUT index"))) // BINPUT
            case 0x72: try memoize(Int(try reader.uint(4, "a LONG_BINPUT index"))) // LONG_BINPUT
            case 0x94: try memoize(memo.count) // MEMOIZE
            case 0x68: stack.append(try fetch(Int(try reader.byte("a BINGET index")))) // BINGET
            case 0x6A: stack.append(try fetch(Int(try reader.uint(4, "a LONG_BINGET index")))) // LONG_BINGET
            case 0x63: // GLOBAL: "module\nname\n"
                let module = try reader.line("a GLOBAL module"), name = try reader.line("a GLOBAL name")
                try push(try global(module, name))
            case 0x93: // STACK_GLOBAL
                let name = try pop().value, module = try pop().value
                guard case .string(let m) = module, case .string(let n) = name else { throw PickleError("STACK_GLOBAL of non-strings") }
                try push(try global(m, n))
            case 0x52: // REDUCE
                let arguments = try pop(), callable = try pop().value
                guard case .global(let f) = callable, case .tuple(let args) = arguments.value else {
                    throw PickleError("REDUCE of \(callable) with \(arguments.value) at byte \(at)")
                }
                if f == "collections.OrderedDict" {
                    guard args.isEmpty else { throw PickleError("collections.OrderedDict called with arguments") }
                    let d = PickleDict()
                    containers.append(d)
                    pushContainer(.dict(d))
                } else {
                    try push(.call(f, args), containing: [arguments])
                }
            case 0x62: // BUILD: sets an object's state; a dict's state (OrderedDict._metadata) is dropped
                let state = try pop().value
                guard let target = stack.last?.value else { throw PickleError("BUILD with no object") }
                switch (target, state) {
                case (.dict, _): break
                case (.call, .none), (.call, .tuple), (.call, .dict): break // e.g. torch.Size: nothing to set for us
                default: throw PickleError("BUILD on \(target) at byte \(at)")
                }
            case 0x51: // BINPERSID
                let id = try pop()
                try push(.persistent(id.value), containing: [id])
            default:
                throw PickleError("opcode 0x\(String(op, radix: 16)) at byte \(at) is not one a state dict uses (refused)")
            }
        }
    }

    /// A LONG's little-endian two's-complement digits as an Int64 when they fit.
    static func integer(_ digits: [UInt8]) -> PickleValue {
        guard !digits.isEmpty else { return .int(0) }
        guard digits.count <= 8 else {
            // Wider encodings of small numbers (sign extension only) still fit.
            let fill: UInt8 = digits[7] & 0x80 != 0 ? 0xFF : 0
            guard digits[8...].allSatisfy({ $0 == fill }) else { return .bigInt(digits) }
            return integer(Array(digits[0 ..< 8]))
        }
        var value: UInt64 = 0
        for (i, b) in digits.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
        if digits.count < 8, digits[digits.count - 1] & 0x80 != 0 { value |= ~UInt64(0) << (8 * UInt64(digits.count)) }
        return .int(Int64(bitPattern: value))
    }

    /// A value on the machine's stack with its nesting depth (a list or dict counts 1: its
    /// contents were checked as they were added).
    struct Item { var value: PickleValue; var depth: Int }

    /// A copy of `v` whose lists and dicts are fresh objects (so breaking the unpickler's
    /// containers afterwards leaves the result intact); a cycle is refused by the depth limit.
    private func detached(_ v: PickleValue, depth: Int = 0) throws -> PickleValue {
        guard depth <= 4 * Unpickler.maxDepth else { throw PickleError("values nested deeper than \(Unpickler.maxDepth) levels (or a cycle)") }
        switch v {
        case .tuple(let items): return .tuple(try items.map { try detached($0, depth: depth + 1) })
        case .call(let f, let items): return .call(f, try items.map { try detached($0, depth: depth + 1) })
        case .persistent(let inner): return .persistent(try detached(inner, depth: depth + 1))
        case .list(let l):
            let copy = PickleList()
            copy.items = try l.items.map { try detached($0, depth: depth + 1) }
            return .list(copy)
        case .dict(let d):
            let copy = PickleDict()
            copy.entries = try d.entries.map { (try detached($0.key, depth: depth + 1), try detached($0.value, depth: depth + 1)) }
            return .dict(copy)
        default: return v
        }
    }
}

/// Bounds-checked reads from a byte array; every failure names what was being read.
struct PickleByteReader {
    let bytes: [UInt8]
    var position: Int

    mutating func byte(_ what: String) throws -> UInt8 {
        guard position < bytes.count else { throw PickleError("truncated: ends where \(what) should be (byte \(position))") }
        defer { position += 1 }
        return bytes[position]
    }
    mutating func bytes(_ n: Int, _ what: String) throws -> [UInt8] {
        guard n >= 0, n <= bytes.count - position else {
            throw PickleError("truncated: \(what) of \(n) bytes at byte \(position) runs past the end (\(bytes.count) bytes)")
        }
        defer { position += n }
        return Array(bytes[position ..< position + n])
    }
    /// A little-endian unsigned integer of `width` ≤ 8 bytes.
    mutating func uint(_ width: Int, _ what: String) throws -> UInt64 {
        try bytes(width, what).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }
    /// A length field, refused when it exceeds what is left of the input.
    mutating func length(_ width: Int, _ what: String) throws -> Int {
        let n = try uint(width, what)
        guard n <= UInt64(bytes.count - position) else {
            throw PickleError("truncated: \(what) of \(n) at byte \(position) exceeds the \(bytes.count - position) bytes left")
        }
        return Int(n)
    }
    /// A newline-terminated ASCII line (GLOBAL's operands), at most 256 bytes.
    mutating func line(_ what: String) throws -> String {
        var raw: [UInt8] = []
        while true {
            let b = try byte(what)
            if b == 0x0A { break }
            guard raw.count < 256, b >= 0x20, b < 0x7F else { throw PickleError("\(what) is not a short ASCII line (byte \(position))") }
            raw.append(b)
        }
        return String(decoding: raw, as: UTF8.self)
    }
}

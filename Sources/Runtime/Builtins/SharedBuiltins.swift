import Foundation
import Kernels

/// Builtins that serve several kinds of native object.
let sharedBuiltins: [Builtin] = [
    Builtin("summary", [Param("x", .oneOf([.native("network"), .native("graph"), .native("layers")]))], returns: "table",
            summary: "A table describing a network (layers, shapes, kept weights) or a graph (partitions and edges).",
            example: "summary(resnet20())") { args in
        guard case .native(let object) = args["x"], let summarizable = object as? Summarizable else {
            throw args.bad("x", "network or graph expected, got \(args["x"].typeName)")
        }
        return try summarizable.summary()
    },
]

/// Reports a finished write on the interpreter's output as `wrote toy.svg (12 kB)`:
/// `shown` is the path as the user gave it, `path` the file whose size is reported.
func reportWrite(_ shown: String, file path: String, _ args: Arguments) {
    let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
    args.interpreter.write("wrote \(shown)\(bytes.map { " (" + byteSize($0) + ")" } ?? "")\n")
}

/// Sizes for messages: "412 B", "12 kB", "1.1 MB", "1228.8 MB".
func byteSize(_ n: Int) -> String {
    if n < 1000 { return "\(n) B" }
    if n < 1_000_000 { return "\(Int((Double(n) / 1000).rounded())) kB" }
    return String(format: "%.1f MB", Double(n) / 1_000_000)
}

import CZMQ
import Foundation
import Kernels
import Lang

/// `mge --kernel connection.json`: a Jupyter kernel (messaging protocol 5.3) over ZeroMQ.
///
/// Threads: the main thread serves the shell channel and runs each cell's interpreter on a large
/// stack (one interpreter for the kernel's life, so variables persist across cells); the control
/// channel (interrupt, shutdown, kernel_info) and the heartbeat echo have their own threads, so
/// they answer while a cell runs. Every message is signed with HMAC-SHA256 of the connection
/// file's key; a message whose signature does not match is dropped unread.
final class JupyterKernel: @unchecked Sendable {
    let connection: ConnectionInfo
    let session = UUID().uuidString.lowercased()
    let shell: ZMQSocket, control: ZMQSocket, stdin: ZMQSocket, iopub: ZMQSocket, heartbeat: ZMQSocket
    /// iopub is written by the cell's thread, the control thread, the output flusher and progress bars.
    private let iopubLock = NSLock()
    let interpreter = Interpreter()
    private var executionCount = 0
    private var history: [(count: Int, code: String)] = []
    /// The request whose cell is running: outputs and displays are its children.
    private let parentLock = NSLock()
    private var runningRequest: KernelMessage?
    let output: CellOutput

    init(_ connection: ConnectionInfo) throws {
        self.connection = connection
        shell = try ZMQSocket(type: ZMQ_ROUTER)
        control = try ZMQSocket(type: ZMQ_ROUTER)
        stdin = try ZMQSocket(type: ZMQ_ROUTER)
        iopub = try ZMQSocket(type: ZMQ_PUB)
        heartbeat = try ZMQSocket(type: ZMQ_REP)
        try shell.bind(connection.endpoint(connection.shellPort))
        try control.bind(connection.endpoint(connection.controlPort))
        try stdin.bind(connection.endpoint(connection.stdinPort))
        try iopub.bind(connection.endpoint(connection.iopubPort))
        try heartbeat.bind(connection.endpoint(connection.heartbeatPort))
        output = CellOutput()
        output.kernel = self
        attachInterpreter()
    }

    // MARK: - Sending

    func send(_ socket: ZMQSocket, _ message: KernelMessage) {
        let frames = message.frames(signedWith: connection.key)
        if socket === iopub {
            iopubLock.withLock { socket.send(frames) }
        } else {
            socket.send(frames)
        }
    }

    /// Publishes on iopub with the given parent (the topic is the message type, as ipykernel does).
    func publish(_ type: String, _ content: [String: Any], parent: KernelMessage?) {
        let message = KernelMessage(type: type, content: content, parent: parent, session: session,
                                    identities: [Array("kernel.\(session).\(type)".utf8)])
        send(iopub, message)
    }

    func reply(_ socket: ZMQSocket, to request: KernelMessage, _ type: String, _ content: [String: Any]) {
        send(socket, KernelMessage(type: type, content: content, parent: request, session: session, identities: request.identities))
    }

    var currentParent: KernelMessage? { parentLock.withLock { runningRequest } }

    // MARK: - Running

    func serve() -> Int32 {
        installInterruptHandler()
        let hb = heartbeat
        Thread.detachNewThread { hb.echoForever() }
        Thread.detachNewThread { [self] in controlLoop() }
        output.startFlusher()
        ProgressBar.surface = KernelProgressSurface(kernel: self)
        publish("status", ["execution_state": "starting"], parent: nil)
        while true {
            guard let frames = shell.receive() else { continue }  // a signal interrupted the wait
            guard let request = KernelMessage.parse(frames, key: connection.key) else {
                fputs("mge kernel: dropped a message with a bad signature or format on shell\n", stderr)
                continue
            }
            handle(request, on: shell)
        }
    }

    private func controlLoop() {
        while true {
            guard let frames = control.receive() else { continue }
            guard let request = KernelMessage.parse(frames, key: connection.key) else {
                fputs("mge kernel: dropped a message with a bad signature or format on control\n", stderr)
                continue
            }
            handle(request, on: control)
        }
    }

    /// Shell and control requests: busy, the reply (and its outputs), idle.
    private func handle(_ request: KernelMessage, on socket: ZMQSocket) {
        publish("status", ["execution_state": "busy"], parent: request)
        defer { publish("status", ["execution_state": "idle"], parent: request) }
        let content = request.content
        switch request.type {
        case "kernel_info_request":
            reply(socket, to: request, "kernel_info_reply", kernelInfo)
        case "execute_request":
            execute(request, on: socket)
        case "complete_request":
            reply(socket, to: request, "complete_reply", complete(content["code"] as? String ?? "", cursor: content["cursor_pos"] as? Int))
        case "inspect_request":
            reply(socket, to: request, "inspect_reply", inspect(content["code"] as? String ?? "", cursor: content["cursor_pos"] as? Int))
        case "is_complete_request":
            reply(socket, to: request, "is_complete_reply", isComplete(content["code"] as? String ?? ""))
        case "history_request":
            reply(socket, to: request, "history_reply", ["status": "ok", "history": historyEntries(content)])
        case "comm_info_request":
            reply(socket, to: request, "comm_info_reply", ["status": "ok", "comms": [String: Any]()])
        case "interrupt_request":
            Cancellation.request()
            reply(socket, to: request, "interrupt_reply", ["status": "ok"])
        case "shutdown_request":
            let restart = content["restart"] as? Bool ?? false
            reply(socket, to: request, "shutdown_reply", ["status": "ok", "restart": restart])
            publish("status", ["execution_state": "idle"], parent: request)
            usleep(100_000)  // let libzmq deliver the reply before the process ends
            exit(0)
        case "comm_open":
            // No comm targets: say so by closing it, as the protocol asks of an unknown target.
            if let id = content["comm_id"] as? String { publish("comm_close", ["comm_id": id, "data": [String: Any]()], parent: request) }
        case "comm_msg", "comm_close":
            break
        default:
            // Unknown request types get an error reply of the matching name so the client does not wait.
            if request.type.hasSuffix("_request") {
                let replyType = String(request.type.dropLast("_request".count)) + "_reply"
                reply(socket, to: request, replyType, ["status": "error", "ename": "NotImplemented",
                                                       "evalue": "mge does not handle \(request.type)", "traceback": [String]()])
            }
        }
    }

    var kernelInfo: [String: Any] {
        [
            "status": "ok",
            "protocol_version": KernelMessage.protocolVersion,
            "implementation": "mge",
            "implementation_version": mgeVersion,
            "language_info": [
                "name": "mge", "version": mgeVersion, "mimetype": "text/x-mge", "file_extension": ".mge",
                "pygments_lexer": "python", "codemirror_mode": "python",
            ] as [String: Any],
            "banner": REPL.banner,
            "help_links": [[String: Any]](),
        ]
    }

    // MARK: - execute

    /// The error of the running cell (the first diagnostic it reported).
    private var cellError: Diagnostic?

    private func execute(_ request: KernelMessage, on socket: ZMQSocket) {
        let code = request.content["code"] as? String ?? ""
        let silent = request.content["silent"] as? Bool ?? false
        let storeHistory = (request.content["store_history"] as? Bool ?? true) && !silent
        if storeHistory { executionCount += 1 }
        let count = executionCount
        if !silent { publish("execute_input", ["code": code, "execution_count": count], parent: request) }
        if storeHistory { history.append((count, code)) }

        parentLock.withLock { runningRequest = silent ? nil : request }
        output.silent = silent
        cellError = nil
        interpreter.missingDataset = nil
        Cancellation.reset()
        let interpreter = self.interpreter
        let source = Source(name: "cell[\(count)]", text: code)
        let outcome = runOnLargeStack { interpreter.run(source, keepGoing: false) }
        output.flush()
        Cancellation.reset()
        parentLock.withLock { runningRequest = nil }

        var replyContent: [String: Any] = ["execution_count": count]
        if outcome == .ok {
            replyContent["status"] = "ok"
            replyContent["user_expressions"] = [String: Any]()
            replyContent["payload"] = [Any]()
        } else {
            let error: [String: Any]
            if outcome == .interrupted {
                error = ["ename": "Interrupted", "evalue": "interrupted", "traceback": ["interrupted"]]
            } else if let d = cellError {
                let lines = d.rendered().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                error = ["ename": d.kind == .syntax ? "SyntaxError" : "RuntimeError", "evalue": d.message,
                         "traceback": Array(lines.dropLast(lines.last == "" ? 1 : 0))]
            } else {
                error = ["ename": "RuntimeError", "evalue": "the cell failed", "traceback": ["the cell failed"]]
            }
            if !silent { publish("error", error, parent: request) }
            replyContent.merge(error) { $1 }
            replyContent["status"] = "error"
        }
        reply(socket, to: request, "execute_reply", replyContent)
    }

    /// Routes the interpreter's output to the running cell's iopub messages.
    private func attachInterpreter() {
        let output = self.output
        interpreter.write = { text in output.write(text, stream: "stdout") }
        interpreter.writeError = { text in output.write(text, stream: "stderr") }
        interpreter.report = { [unowned self] diagnostic in
            if cellError == nil { cellError = diagnostic } else { output.write(diagnostic.rendered(), stream: "stderr") }
        }
        interpreter.displayValue = { [unowned self] value in
            if let figures = RichOutput.figures(value) {
                for figure in figures { interpreter.displayValue?(figure) }
                return
            }
            guard let bundle = RichOutput.bundle(value), let parent = currentParent else { return }
            output.flush()
            // Figures are displays (as a plotting library's are); other values the cell's results.
            if case .native(let native) = value, native is FigureObject {
                publish("display_data", ["data": bundle, "metadata": RichOutput.metadata(value)], parent: parent)
            } else {
                publish("execute_result", ["execution_count": executionCount, "data": bundle, "metadata": [String: Any]()], parent: parent)
            }
        }
    }

    // MARK: - history

    /// This kernel's cells for a history_request: `tail` (the last n), `range` (lines start..<stop)
    /// or `search` (a glob pattern, optionally unique, the last n). Entries are [session, line,
    /// input], or [session, line, [input, null]] with output: true (outputs are not kept).
    /// The session is always 1: history lives as long as the kernel.
    func historyEntries(_ content: [String: Any]) -> [[Any]] {
        var cells = history
        let n = content["n"] as? Int
        switch content["hist_access_type"] as? String ?? "tail" {
        case "range":
            let start = content["start"] as? Int ?? 0
            let stop = content["stop"] as? Int ?? Int.max
            cells = cells.filter { $0.count >= start && $0.count < stop }
        case "search":
            let pattern = content["pattern"] as? String ?? "*"
            cells = cells.filter { fnmatch(pattern, $0.code, 0) == 0 }
            if content["unique"] as? Bool ?? false {
                var seen = Set<String>()
                cells = cells.reversed().filter { seen.insert($0.code).inserted }.reversed()
            }
            if let n { cells = Array(cells.suffix(max(0, n))) }
        default:
            if let n { cells = Array(cells.suffix(max(0, n))) }
        }
        let withOutput = content["output"] as? Bool ?? false
        return cells.map { [1, $0.count, withOutput ? [$0.code, NSNull()] as [Any] : $0.code] }
    }

    // MARK: - complete, inspect, is_complete

    /// The identifier (with dotted fields) that ends at `cursor` (a count of Unicode scalars).
    static func word(in code: String, endingAt cursor: Int?) -> (word: String, start: Int, end: Int) {
        let scalars = Array(code.unicodeScalars)
        let end = min(max(0, cursor ?? scalars.count), scalars.count)
        var start = end
        func isWordScalar(_ s: Unicode.Scalar) -> Bool { s == "_" || s == "." || s.properties.isAlphabetic || ("0"..."9").contains(s) }
        while start > 0, isWordScalar(scalars[start - 1]) { start -= 1 }
        var word = String.UnicodeScalarView()
        word.append(contentsOf: scalars[start..<end])
        return (String(word), start, end)
    }

    func complete(_ code: String, cursor: Int?) -> [String: Any] {
        let (word, start, end) = JupyterKernel.word(in: code, endingAt: cursor)
        let matches = REPL.completions(for: word, in: interpreter, code: code, cursor: cursor)
        return ["status": "ok", "matches": matches, "cursor_start": start, "cursor_end": end, "metadata": [String: Any]()]
    }

    func inspect(_ code: String, cursor: Int?) -> [String: Any] {
        // The whole name under the cursor: extend the word past the cursor too.
        let scalars = Array(code.unicodeScalars)
        var end = min(max(0, cursor ?? scalars.count), scalars.count)
        while end < scalars.count, scalars[end] == "_" || scalars[end].properties.isAlphabetic || ("0"..."9").contains(scalars[end]) { end += 1 }
        var name = JupyterKernel.word(in: code, endingAt: end).word
        if name.hasPrefix("?") { name.removeFirst() }
        guard !name.isEmpty, let text = Help.text(forName: name, in: interpreter, scope: interpreter.globals) else {
            return ["status": "ok", "found": false, "data": [String: Any](), "metadata": [String: Any]()]
        }
        return ["status": "ok", "found": true, "data": ["text/plain": text], "metadata": [String: Any]()]
    }

    func isComplete(_ code: String) -> [String: Any] {
        let parsed = Parser.parse(Source(name: "cell", text: code))
        if parsed.isIncomplete { return ["status": "incomplete", "indent": "    "] }
        return ["status": parsed.diagnostics.isEmpty ? "complete" : "invalid"]
    }

    // MARK: - Interrupt

    /// SIGINT (Jupyter's interrupt in "signal" mode) asks the running cell to stop at its next
    /// safe point, as Ctrl-C does in the REPL; the kernel and its variables stay.
    private func installInterruptHandler() {
        _ = Cancellation.isRequested
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in Cancellation.request() }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGINT, &action, nil)
    }
}

/// The running cell's printed text, sent as `stream` messages: text is gathered and sent at most
/// every 0.2 s (and before any display), so a loop printing thousands of lines sends a few
/// dozen messages instead of thousands.
final class CellOutput: @unchecked Sendable {
    weak var kernel: JupyterKernel?
    var silent = false
    private let lock = NSLock()
    private var pending: [(stream: String, text: String)] = []
    private var lastFlush = Date()
    static let interval = 0.2

    func write(_ text: String, stream: String) {
        let due: Bool = lock.withLock {
            if let last = pending.last, last.stream == stream {
                pending[pending.count - 1].text += text
            } else {
                pending.append((stream, text))
            }
            return Date().timeIntervalSince(lastFlush) >= CellOutput.interval
        }
        if due { flush() }
    }

    /// Held from taking the text to sending it, so two flushes (the cell's and the flusher's)
    /// never send their parts out of order.
    private let sending = NSLock()

    func flush() {
        sending.withLock {
            let parts: [(stream: String, text: String)] = lock.withLock {
                defer { pending = []; lastFlush = Date() }
                return pending
            }
            guard let kernel, !silent, let parent = kernel.currentParent else { return }
            for part in parts where !part.text.isEmpty {
                kernel.publish("stream", ["name": part.stream, "text": part.text], parent: parent)
            }
        }
    }

    /// Sends text that waited longer than the interval (a print before a long computation).
    func startFlusher() {
        Thread.detachNewThread { [weak self] in
            while let self {
                usleep(UInt32(CellOutput.interval * 1e6))
                let waiting = self.lock.withLock { !self.pending.isEmpty }
                if waiting { self.flush() }
            }
        }
    }
}

/// Progress bars in a notebook: each bar is one display (`display_data` with a display_id) that
/// later draws replace (`update_display_data`), at most twice a second.
final class KernelProgressSurface: ProgressSurface, @unchecked Sendable {
    weak var kernel: JupyterKernel?
    private let lock = NSLock()
    private var shown: [ObjectIdentifier: (id: String, last: Date)] = [:]
    private var counter = 0
    static let interval = 0.5

    init(kernel: JupyterKernel) { self.kernel = kernel }

    func draw(_ line: String, bar: ObjectIdentifier, final: Bool) {
        guard let kernel, let parent = kernel.currentParent else { return }
        let now = Date()
        let decision: (type: String, id: String)? = lock.withLock {
            if let entry = shown[bar] {
                guard final || now.timeIntervalSince(entry.last) >= KernelProgressSurface.interval else { return nil }
                if final { shown[bar] = nil } else { shown[bar] = (entry.id, now) }
                return ("update_display_data", entry.id)
            }
            counter += 1
            let id = "mge-progress-\(kernel.session.prefix(8))-\(counter)"
            if !final { shown[bar] = (id, now) }
            return ("display_data", id)
        }
        guard let decision else { return }
        kernel.output.flush()
        kernel.publish(decision.type, ["data": ["text/plain": line], "metadata": [String: Any](),
                                       "transient": ["display_id": decision.id]], parent: parent)
    }
}

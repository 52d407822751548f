import Foundation
import Kernels

/// Runs jobs in separate worker processes, so a crash or an out-of-memory kill while one job
/// runs costs that job only: its worker's death is reported as the job's outcome and a fresh
/// worker takes its place.
///
/// Protocol (lines on the worker's stdin and stdout; other stdout lines are ignored):
///   worker → pool   `\u{1}SWEEP READY <fingerprint>` once it can take jobs
///   pool → worker   `<job id>`                         one job at a time
///   worker → pool   `\u{1}SWEEP DONE <reply>`         when the job is finished
/// The worker exits when its stdin closes.
///
/// Memory-aware: a job starts only when the estimated bytes of the jobs running plus its own fit
/// in `memoryBudget` (or nothing else is running).
public final class WorkerPool {
    public struct Job: Sendable {
        public let id: Int
        public let bytes: Int
        public init(id: Int, bytes: Int) { self.id = id; self.bytes = bytes }
    }

    public enum Outcome: Sendable {
        case reply(String)
        /// The worker died while running the job (the reason names the signal or exit status).
        case died(String)
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    static let prefix = "\u{1}SWEEP "
    public static func readyLine(_ fingerprint: String) -> String { prefix + "READY " + fingerprint + "\n" }
    public static func doneLine(_ reply: String) -> String { prefix + "DONE " + reply + "\n" }

    private struct Worker {
        let pid: pid_t
        let input: Int32
        let output: Int32
        var buffer: [UInt8] = []
        var ready = false
        var job: Job?
    }

    let executable: String
    let arguments: [String]
    let environment: [String: String]

    public init(executable: String, arguments: [String], environment: [String: String]) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    /// Runs every job on up to `workers` processes. `checkReady` sees each worker's fingerprint and
    /// returns an error message when the worker is not running the same sweep; `started` and
    /// `finished` are called on this thread. Ctrl-C (Cancellation) stops the workers and throws.
    public func run(_ jobs: [Job], workers count: Int, memoryBudget: Int?,
                    checkReady: (String) -> String?, started: (Int) -> Void,
                    finished: (Int, Outcome) throws -> Void) throws {
        signal(SIGPIPE, SIG_IGN) // a dead worker's stdin must not kill the pool
        var pending = jobs[...]
        var pool: [Worker] = []
        defer {
            for w in pool { close(w.input); close(w.output); kill(w.pid, SIGKILL); var s: Int32 = 0; waitpid(w.pid, &s, 0) }
        }
        for _ in 0 ..< min(count, jobs.count) { pool.append(try spawn()) }
        var deathsBeforeReady = 0
        while !pending.isEmpty || pool.contains(where: { $0.job != nil }) {
            if Cancellation.isRequested { throw InterruptedError() }
            // Hand out jobs to idle, ready workers while memory allows.
            for i in pool.indices where pool[i].ready && pool[i].job == nil {
                guard let next = pending.first else { break }
                let running = pool.compactMap(\.job).reduce(0) { $0 + $1.bytes }
                if let budget = memoryBudget, running > 0, running + next.bytes > budget { break }
                pending.removeFirst()
                pool[i].job = next
                started(next.id)
                let line = Array("\(next.id)\n".utf8)
                _ = line.withUnsafeBytes { write(pool[i].input, $0.baseAddress, $0.count) }
            }
            var fds = pool.map { pollfd(fd: $0.output, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), 100)
            if n <= 0 { continue }
            var dead: [Int] = []
            for i in pool.indices where fds[i].revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 65536)
                let got = chunk.withUnsafeMutableBytes { read(pool[i].output, $0.baseAddress, $0.count) }
                if got < 0, errno == EINTR { continue }
                if got <= 0 { dead.append(i); continue }
                pool[i].buffer += chunk[0 ..< got]
                while let nl = pool[i].buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pool[i].buffer[..<nl], as: UTF8.self)
                    pool[i].buffer.removeSubrange(...nl)
                    guard line.hasPrefix(Self.prefix) else { continue }
                    let message = line.dropFirst(Self.prefix.count)
                    if message.hasPrefix("READY ") {
                        if let problem = checkReady(String(message.dropFirst(6))) { throw Failure(description: problem) }
                        pool[i].ready = true
                    } else if message.hasPrefix("DONE "), let job = pool[i].job {
                        pool[i].job = nil
                        try finished(job.id, .reply(String(message.dropFirst(5))))
                    }
                }
            }
            for i in dead.reversed() {
                let w = pool.remove(at: i)
                close(w.input); close(w.output)
                var status: Int32 = 0
                waitpid(w.pid, &status, 0)
                // Ctrl-C reaches the workers too: the sweep stops, no point is blamed.
                if Cancellation.isRequested || (status & 0x7f == 0 && (status >> 8) & 0xff == 130) || status & 0x7f == SIGINT {
                    throw InterruptedError()
                }
                let reason = Self.describe(status)
                if let job = w.job {
                    try finished(job.id, .died("the worker process \(reason) while running this point"))
                } else if !w.ready {
                    deathsBeforeReady += 1
                    if deathsBeforeReady >= 2 {
                        throw Failure(description: "a worker process \(reason) before it reached the sweep (its messages are above)")
                    }
                }
                if !pending.isEmpty { pool.append(try spawn()) }
            }
        }
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        let name: String
        switch signal {
        case SIGKILL: name = "SIGKILL: out of memory, or kill -9"
        case SIGSEGV: name = "SIGSEGV: a crash"
        case SIGILL, SIGTRAP: name = "signal \(signal): a failed check"
        default: name = "signal \(signal)"
        }
        return "was killed (\(name))"
    }

    private func spawn() throws -> Worker {
        var toWorker: [Int32] = [0, 0], fromWorker: [Int32] = [0, 0]
        guard pipe(&toWorker) == 0, pipe(&fromWorker) == 0 else {
            throw Failure(description: "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        // Not inherited by later workers (each must see EOF when the pool closes its stdin).
        for fd in toWorker + fromWorker { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toWorker[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromWorker[1], 1)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        close(toWorker[0]); close(fromWorker[1])
        guard rc == 0 else {
            close(toWorker[1]); close(fromWorker[0])
            throw Failure(description: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        return Worker(pid: pid, input: toWorker[1], output: fromWorker[0])
    }
}

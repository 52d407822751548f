import Foundation

/// Paths shared by the tests that drive the built executables.
enum TestPaths {
    /// The package root (this file is Tests/RuntimeTests/Support.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// An executable product built next to the test bundle (`.build/<config>/`).
    static func product(_ name: String) -> URL? {
        var candidates: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent(name))
        }
        for config in ["release", "debug"] {
            candidates.append(packageRoot.appendingPathComponent(".build/\(config)/\(name)"))
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }
}

struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs an executable with arguments and optional stdin, waiting at most `timeout` seconds;
/// `environment` adds to (or overrides) this process's variables.
func runProcess(_ executable: URL, _ arguments: [String], stdin: String? = nil, directory: URL = TestPaths.packageRoot,
                timeout: TimeInterval = 60, environment: [String: String] = [:]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    process.currentDirectoryURL = directory
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try? input.fileHandleForWriting.close()
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    final class Collected: @unchecked Sendable { var data = Data() }
    let errCollected = Collected()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errCollected.data = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    timer.cancel()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errCollected.data, as: UTF8.self))
}

import CZMQ
import Foundation

/// A thin wrapper over one libzmq socket: bind, multipart send and receive. A socket is
/// used by one thread at a time (the kernel serialises the shared iopub socket with a lock).
final class ZMQSocket: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ what: String) { description = "\(what): \(String(cString: zmq_strerror(zmq_errno())))" }
    }

    /// One context per process (libzmq's I/O threads).
    nonisolated(unsafe) static let context: UnsafeMutableRawPointer? = zmq_ctx_new()

    let handle: UnsafeMutableRawPointer

    init(type: Int32) throws {
        guard let context = ZMQSocket.context, let socket = zmq_socket(context, type) else { throw Failure("zmq_socket") }
        handle = socket
        var linger: Int32 = 1000  // unsent replies get a second at shutdown, then are dropped
        zmq_setsockopt(handle, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size)
    }

    deinit { zmq_close(handle) }

    func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw Failure("cannot bind \(endpoint)") }
    }

    /// Sends the frames as one multipart message; retried when a signal interrupts the call.
    func send(_ frames: [[UInt8]]) {
        for (i, frame) in frames.enumerated() {
            let flags = i + 1 < frames.count ? ZMQ_SNDMORE : 0
            while true {
                let sent = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
                if sent >= 0 || zmq_errno() != EINTR { break }
            }
        }
    }

    /// Receives one multipart message; nil when the wait was interrupted by a signal or timed out.
    func receive() -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            if zmq_msg_recv(&message, handle, 0) < 0 {
                if frames.isEmpty { return nil }
                if zmq_errno() == EINTR { continue }  // mid-message: the rest is already queued
                return nil
            }
            let size = zmq_msg_size(&message)
            let bytes = zmq_msg_data(&message).map { [UInt8](UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            frames.append(bytes)
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }

    /// The heartbeat: echoes every message back on a REP socket until the context ends.
    func echoForever() {
        while true {
            guard let frames = receive() else {
                if zmq_errno() == ETERM { return }
                continue
            }
            send(frames)
        }
    }
}

import Foundation

private final class ThreadBody: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Runs `body` on a fresh thread with a large stack and waits for it. The evaluator recurses once per
/// nested call and expression; its own limits turn deep recursion into an error long before 512 MB.
public func runOnLargeStack<T>(stackSize: Int = 512 << 20, _ body: @escaping () -> T) -> T {
    var result: [T] = []
    let context = Unmanaged.passRetained(ThreadBody { result.append(body()) }).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setstacksize(&attributes, stackSize)
    var thread = pthread_t()
    let created = pthread_create(&thread, &attributes, { raw in
        guard let raw else { return nil }
        let body = Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue()
        // The REPL's main thread takes Ctrl-C (it must interrupt readline); workers never see SIGINT.
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGINT)
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        body.run()
        return nil
    }, context)
    if created != 0 {
        // No thread (resource limits): run here with the ordinary stack rather than not at all.
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        return body()
    }
    pthread_join(thread, nil)
    // The thread always stores a result; the fallback only keeps this total without a force unwrap.
    return result.first ?? body()
}

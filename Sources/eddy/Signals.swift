import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGTERM and SIGINT as a semaphore. Create it before any thread starts
/// (Kafka, Redis, stage threads): libdispatch blocks the signals and reads
/// them itself, and threads inherit the signal mask of their creator, so a
/// thread created earlier could receive and drop the signal.
final class TerminationSignals: @unchecked Sendable {
    let semaphore = DispatchSemaphore(value: 0)
    private var sources: [DispatchSourceSignal] = []

    init() {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [semaphore] in semaphore.signal() }
            s.resume()
            sources.append(s)
        }
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits up to `timeout`; true when a signal arrived.
    func wait(timeout: DispatchTimeInterval) -> Bool {
        semaphore.wait(timeout: .now() + timeout) == .success
    }

    func wait() { semaphore.wait() }
}

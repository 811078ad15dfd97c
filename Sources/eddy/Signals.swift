#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A command that stops gracefully on SIGTERM and SIGINT, through
/// ServiceLifecycle (`run`, `serve`, `dev broker`). `Eddy.main` calls
/// `prepareProcess()` on the main thread, before any other thread starts.
protocol StopsOnTerminationSignals {
    func prepareProcess()
}

extension StopsOnTerminationSignals {
    func prepareProcess() { blockTerminationSignals() }
}

/// Blocks SIGTERM and SIGINT in the calling thread. Call it before any other
/// thread starts (Kafka, Redis, NIO, stage threads, Swift's pool): threads
/// inherit their creator's signal mask, so then no thread takes the signal
/// itself (the disposition is SIG_IGN once it is trapped, and it would be
/// dropped). The signal stays pending for the process, where libdispatch's
/// signalfd, under ServiceLifecycle's `UnixSignalsSequence`, reads it.
func blockTerminationSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_BLOCK, &set, nil)
}

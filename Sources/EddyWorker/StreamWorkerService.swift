import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `eddy run` as a ServiceLifecycle service.
///
/// `run()` starts the worker's stages and logs a progress line every
/// `statsInterval` until the group shuts down gracefully (SIGTERM or SIGINT
/// in `eddy run`). Then it stops the worker as it always has: stop
/// consuming, flush, commit, leave the group. That normally takes well under
/// a second, but leaving the group waits out the session timeout when Kafka
/// is gone, and the last flush cannot finish when Redis is. So the stop is
/// abandoned, and the process exits with status 1, after `stopTimeout`
/// (inside Kubernetes' default 30 s grace period) or at a second signal.
public struct StreamWorkerService: Service {
    public let worker: StreamWorker
    /// Time between progress lines in the log (nil: none).
    public var statsInterval: Duration?
    /// How long a stop may take before the process exits anyway.
    public var stopTimeout: Duration
    /// Called once the stages run (e.g. `/healthz` starts following them).
    public var onStarted: @Sendable () -> Void
    /// Ends the process when a stop is abandoned. Tests replace it.
    public var abandonStop: @Sendable (_ why: String) -> Void

    public static let defaultStopTimeout: Duration = .seconds(25)

    public init(worker: StreamWorker, statsInterval: Duration? = .seconds(10),
                stopTimeout: Duration = Self.defaultStopTimeout,
                onStarted: @escaping @Sendable () -> Void = {},
                abandonStop: @escaping @Sendable (String) -> Void = { _ in exit(1) }) {
        self.worker = worker
        self.statsInterval = statsInterval
        self.stopTimeout = stopTimeout
        self.onStarted = onStarted
        self.abandonStop = abandonStop
    }

    public func run() async throws {
        let worker = self.worker
        // Starting probes Redis and Kafka with blocking calls: off the
        // cooperative pool.
        try await onOwnThread(name: "eddy-start") { try worker.start() }
        onStarted()
        let interval = statsInterval
        try? await cancelWhenGracefulShutdown {
            guard let interval else { return try await gracefulShutdown() }
            while true {
                try await Task.sleep(for: interval)
                worker.logger.info("\(worker.summary)")
            }
        }
        try await stop()
    }

    /// Stops the worker; abandons the stop after `stopTimeout` or at the
    /// next SIGTERM/SIGINT.
    func stop() async throws {
        worker.logger.info("stopping: flushing and committing")
        // Trapped only now: the signal that started the shutdown has been
        // handled, so the next one is a second signal.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let worker = self.worker, timeout = stopTimeout
        enum Outcome: Sendable { case stopped, secondSignal, timedOut }
        // The first of three wins. The stop runs on a thread of its own and
        // cannot be interrupted: when it loses, the process exits under it.
        let (outcomes, report) = AsyncStream.makeStream(of: Outcome.self)
        Thread {
            worker.stop()
            report.yield(.stopped)
        }.start()
        let secondSignal = Task {
            for await _ in signals { report.yield(.secondSignal); return }
        }
        let timer = Task {
            if (try? await Task.sleep(for: timeout)) != nil { report.yield(.timedOut) }
        }
        var first = Outcome.stopped
        for await outcome in outcomes { first = outcome; break }
        secondSignal.cancel()
        timer.cancel()
        let outcome = first
        guard outcome != .stopped else { return }
        worker.logger.error("""
            stopping did not finish (\(outcome == .secondSignal ? "second signal" : "timed out"); is Kafka or Redis \
            unreachable?): exiting without leaving the group. Every acknowledged write is in Redis; a restart re-reads \
            from the last committed offsets and the fences skip what Redis already has.
            """)
        abandonStop(outcome == .secondSignal ? "second signal" : "timed out")
    }
}

/// Runs blocking work on a thread of its own and waits for it without
/// holding a thread of Swift's cooperative pool.
func onOwnThread<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.name = name
        thread.start()
    }
}

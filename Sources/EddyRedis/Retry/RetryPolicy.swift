#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Capped exponential backoff for retrying an operation that failed transiently.
///
/// Retry `n` (1-based) waits `min(initialDelay * multiplier^(n-1), maxDelay)`, shortened by a
/// random fraction up to ``jitter``. The synchronous ``run(shouldRetry:_:)`` blocks the calling
/// thread in `nanosleep` (no busy-waiting); the `async` variant suspends with `Task.sleep`.
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts, the first one included (1 means "no retry").
    public var maxAttempts: Int
    /// Wait before the first retry.
    public var initialDelay: Duration
    /// Upper bound of any single wait.
    public var maxDelay: Duration
    /// Growth factor of the wait from one retry to the next.
    public var multiplier: Double
    /// Fraction (0...1) of each wait that may randomly be cut, to spread reconnect storms.
    public var jitter: Double

    /// Creates a policy.
    public init(maxAttempts: Int = 6,
                initialDelay: Duration = .milliseconds(50),
                maxDelay: Duration = .seconds(2),
                multiplier: Double = 2,
                jitter: Double = 0.2) {
        precondition(maxAttempts >= 1, "maxAttempts must be at least 1")
        self.maxAttempts = maxAttempts
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.multiplier = max(1, multiplier)
        self.jitter = min(max(0, jitter), 1)
    }

    /// Six attempts over about 1.5 s: 50, 100, 200, 400, 800 ms.
    public static let `default` = RetryPolicy()

    /// A single attempt.
    public static let never = RetryPolicy(maxAttempts: 1)

    /// The wait before retry `retry` (1-based), before jitter.
    public func backoff(beforeRetry retry: Int) -> Duration {
        let grown = seconds(initialDelay) * pow(multiplier, Double(max(0, retry - 1)))
        return .seconds(min(grown, seconds(maxDelay)))
    }

    /// The default classification: ``RedisError/isTransient`` for Redis errors, `false` otherwise.
    public static func isTransient(_ error: any Error) -> Bool {
        (error as? RedisError)?.isTransient ?? false
    }

    /// Runs `operation` (passed the 1-based attempt number) until it succeeds, throws an error
    /// `shouldRetry` rejects, or ``maxAttempts`` is reached (then the last error is thrown).
    public func run<T, E: Error>(shouldRetry: (E) -> Bool,
                                 _ operation: (_ attempt: Int) throws(E) -> T) throws(E) -> T {
        var attempt = 1
        while true {
            do {
                return try operation(attempt)
            } catch {
                guard attempt < maxAttempts, shouldRetry(error) else { throw error }
                Self.sleep(jittered(backoff(beforeRetry: attempt)))
                attempt += 1
            }
        }
    }

    /// Runs `operation`, retrying errors for which ``isTransient(_:)`` holds.
    public func run<T>(_ operation: (_ attempt: Int) throws -> T) throws -> T {
        try run(shouldRetry: { (error: any Error) in Self.isTransient(error) }, operation)
    }

    /// Like ``run(shouldRetry:_:)`` but suspends between attempts instead of blocking a thread.
    /// Cancellation ends the wait and throws `CancellationError`.
    public func run<T>(shouldRetry: (any Error) -> Bool = RetryPolicy.isTransient,
                       _ operation: (_ attempt: Int) async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await operation(attempt)
            } catch {
                guard attempt < maxAttempts, shouldRetry(error) else { throw error }
                try await Task.sleep(for: jittered(backoff(beforeRetry: attempt)))
                attempt += 1
            }
        }
    }

    private func jittered(_ delay: Duration) -> Duration {
        guard jitter > 0 else { return delay }
        return .seconds(seconds(delay) * (1 - Double.random(in: 0...jitter)))
    }

    private func seconds(_ duration: Duration) -> Double {
        let (whole, fraction) = duration.components
        return Double(whole) + Double(fraction) * 1e-18
    }

    /// Blocks the thread for `duration` (resuming after signal interruptions).
    package static func sleep(_ duration: Duration) {
        let (whole, fraction) = duration.components
        guard whole > 0 || fraction > 0 else { return }
        var request = timespec(tv_sec: .init(whole), tv_nsec: .init(fraction / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1, errno == EINTR {
            request = remaining
        }
    }
}

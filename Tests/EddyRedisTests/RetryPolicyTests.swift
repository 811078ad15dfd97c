import EddyRedis
import Testing

@Suite("RetryPolicy")
struct RetryPolicyTests {
    @Test("backoff grows geometrically and is capped")
    func backoff() {
        let policy = RetryPolicy(maxAttempts: 10, initialDelay: .milliseconds(50), maxDelay: .seconds(1), multiplier: 2)
        #expect(policy.backoff(beforeRetry: 1) == .milliseconds(50))
        #expect(policy.backoff(beforeRetry: 2) == .milliseconds(100))
        #expect(policy.backoff(beforeRetry: 5) == .milliseconds(800))
        #expect(policy.backoff(beforeRetry: 6) == .seconds(1))
        #expect(policy.backoff(beforeRetry: 40) == .seconds(1))
    }

    static let fast = RetryPolicy(maxAttempts: 4, initialDelay: .milliseconds(1), maxDelay: .milliseconds(2), jitter: 0.5)

    @Test("transient errors are retried until success")
    func retriesTransient() throws {
        var calls = 0
        let result = try Self.fast.run { attempt in
            calls += 1
            #expect(attempt == calls)
            if calls < 3 { throw RedisError.connectionLost(reason: "test") }
            return "done"
        }
        #expect(result == "done")
        #expect(calls == 3)
    }

    @Test("permanent errors are not retried")
    func permanentNotRetried() {
        var calls = 0
        let error = caughtError { () throws(any Error) in
            _ = try Self.fast.run { _ -> Int in
                calls += 1
                throw RedisError.server(message: "WRONGTYPE Operation against a key")
            }
        }
        #expect(calls == 1)
        #expect((error as? RedisError)?.serverErrorCode == "WRONGTYPE")
    }

    @Test("the last error is thrown after maxAttempts")
    func exhausted() {
        var calls = 0
        let error = caughtError { () throws(RedisError) in
            _ = try Self.fast.run(shouldRetry: { (error: RedisError) in error.isTransient }) { (attempt: Int) throws(RedisError) -> Int in
                calls += 1
                throw .server(message: "LOADING Redis is loading the dataset in memory (\(attempt))")
            }
        }
        #expect(calls == 4)
        #expect(error == .server(message: "LOADING Redis is loading the dataset in memory (4)"))
    }

    @Test("async variant retries with Task.sleep")
    func asyncRun() async throws {
        var calls = 0
        let value = try await Self.fast.run { (_: Int) async throws -> Int in
            calls += 1
            if calls == 1 { throw RedisError.timedOut(reason: "test") }
            return 7
        }
        #expect(value == 7)
        #expect(calls == 2)
    }

    @Test("transient classification")
    func classification() {
        #expect(RedisError.connectionFailed(endpoint: "h:1", reason: "refused").isTransient)
        #expect(RedisError.server(message: "BUSY script").isTransient)
        #expect(!RedisError.server(message: "ERR syntax").isTransient)
        #expect(!RedisError.authenticationFailed(message: "WRONGPASS").isTransient)
        #expect(!RetryPolicy.isTransient(CancellationError()))
    }
}

extension RedisConnection {
    /// Runs `body`, and when it fails transiently (``RedisError/isTransient``) waits per `policy`,
    /// reconnects if the connection is broken or has unread replies, and runs it again. A failed
    /// reconnect counts as a failed attempt.
    ///
    /// `body` may run more than once, so it should be idempotent (e.g. `HSET`/`SET` of absolute
    /// values); commands of a failed attempt may or may not have been applied.
    public func withRetry<T>(_ policy: RetryPolicy = .default,
                             _ body: (RedisConnection) throws(RedisError) -> T) throws(RedisError) -> T {
        try policy.run(shouldRetry: { (error: RedisError) in error.isTransient }) { (_: Int) throws(RedisError) -> T in
            if !isConnected || pendingReplyCount > 0 {
                try reconnect()
            }
            return try body(self)
        }
    }
}

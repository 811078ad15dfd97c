import EddyRedis

/// Throughput measurements for the CLI's `bench` command.
public enum RedisBenchmark {
    /// Sends `count` `SET <keyPrefix><i> <value>` commands in pipelined batches of
    /// `pipelineDepth` (append a batch, then read its replies) and returns commands per second.
    ///
    /// Keys `keyPrefix0 ..< keyPrefix<count>` are overwritten; values are `valueSize` bytes.
    ///
    /// - Throws: ``RedisError`` for connection failures or if any `SET` was answered with an error.
    public static func pipelinedSet(url: RedisURL, count: Int, pipelineDepth: Int,
                                    valueSize: Int = 32,
                                    keyPrefix: String = "eddy:bench:") throws(RedisError) -> Double {
        guard count > 0, pipelineDepth > 0, valueSize >= 0 else {
            throw .invalidUsage("count and pipelineDepth must be positive, valueSize non-negative")
        }
        let connection = try RedisConnection(url: url)
        let value = [UInt8](repeating: UInt8(ascii: "v"), count: valueSize)
        let start = ContinuousClock.now
        var sent = 0
        while sent < count {
            let batch = min(pipelineDepth, count - sent)
            for index in sent..<(sent + batch) {
                try connection.append(building: { command in
                    command.add("SET")
                    command.addJoined(keyPrefix, index)
                    command.add(value)
                })
            }
            try connection.drain(count: batch).check()
            sent += batch
        }
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        return Double(count) / max(Double(seconds) + Double(attoseconds) * 1e-18, 1e-9)
    }
}

/// What ``RedisConnection/drain(count:)`` saw while discarding a batch of replies.
public struct PipelineSummary: Sendable, Hashable {
    /// Replies read.
    public var replyCount = 0
    /// Error replies among them.
    public var errorCount = 0
    /// The message of the first error reply, if any.
    public var firstError: String?

    /// An empty summary.
    public init() {}

    /// Throws ``RedisError/server(message:)`` with the first error if any reply was an error.
    public func check() throws(RedisError) {
        if let firstError {
            throw .server(message: errorCount == 1 ? firstError : "\(firstError) (and \(errorCount - 1) more errors)")
        }
    }

    mutating func recordError(_ message: String) {
        errorCount += 1
        if firstError == nil { firstError = message }
    }
}

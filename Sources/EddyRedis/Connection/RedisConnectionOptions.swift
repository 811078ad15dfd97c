extension RedisConnection {
    /// Connection settings other than the address and credentials (those come from ``RedisURL``).
    public struct Options: Sendable {
        /// Maximum time to establish the TCP or Unix socket connection.
        public var connectTimeout: Duration
        /// Maximum time a blocking read or write may wait; `nil` waits indefinitely.
        /// After a timeout the connection must be re-established with ``RedisConnection/reconnect()``.
        public var commandTimeout: Duration?
        /// Enables TCP keep-alive probes on TCP connections.
        public var tcpKeepAlive: Bool
        /// Sent with `CLIENT SETNAME` after connecting, when set (no spaces allowed).
        public var clientName: String?
        /// Runs after every successful connect and reconnect (after `AUTH`/`SELECT`), e.g. to load
        /// function libraries into a server that may have restarted empty. An error aborts the connect.
        public var onConnect: (@Sendable (RedisConnection) throws(RedisError) -> Void)?

        /// Creates options; the defaults suit a local feature store.
        public init(connectTimeout: Duration = .seconds(2),
                    commandTimeout: Duration? = nil,
                    tcpKeepAlive: Bool = true,
                    clientName: String? = nil,
                    onConnect: (@Sendable (RedisConnection) throws(RedisError) -> Void)? = nil) {
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.tcpKeepAlive = tcpKeepAlive
            self.clientName = clientName
            self.onConnect = onConnect
        }
    }
}

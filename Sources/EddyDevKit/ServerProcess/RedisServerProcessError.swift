/// Why ``RedisServerProcess`` could not start a server.
public enum RedisServerProcessError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No scratch directory could be created.
    case temporaryDirectoryUnavailable(String)
    /// The kernel handed out no free loopback port.
    case noFreePort
    /// `posix_spawn` failed (e.g. `redis-server` is not installed or not in `PATH`).
    case spawnFailed(executable: String, reason: String)
    /// The server exited before answering `PING`; `log` is the tail of its output.
    case exitedDuringStartup(status: String, log: String)
    /// The server did not answer `PING` in time; `log` is the tail of its output.
    case startupTimedOut(log: String)

    /// A human-readable description, including the server's log when there is one.
    public var description: String {
        switch self {
        case let .temporaryDirectoryUnavailable(reason):
            return "cannot create a directory for redis-server: \(reason)"
        case .noFreePort:
            return "no free loopback port for redis-server"
        case let .spawnFailed(executable, reason):
            return "cannot start \(executable): \(reason) (is redis-server installed?)"
        case let .exitedDuringStartup(status, log):
            return "redis-server \(status) during start-up; log:\n\(log)"
        case let .startupTimedOut(log):
            return "redis-server did not answer PING in time; log:\n\(log)"
        }
    }
}

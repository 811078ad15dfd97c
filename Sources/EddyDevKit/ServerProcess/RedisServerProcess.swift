import EddyRedis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `redis-server` child process on a free loopback port, for tests of any target.
///
/// It runs with `--port P --bind 127.0.0.1 --save '' --appendonly no --dir DIR` (plus
/// `--logfile ''` with its output captured in `DIR/redis.log`, and `--enable-debug-command local`);
/// ``Configuration/options`` overrides or extends these, e.g. `["appendonly": "yes"]`.
/// The initializer returns once the server answers `PING`.
///
/// ``stop(_:)`` ends it with `SIGTERM` (a clean shutdown, which persists data when persistence
/// is enabled) or `SIGKILL` (a crash); ``restart(_:)`` / ``start()`` bring it back on the same port
/// and directory. Deinitialisation kills the server and removes a directory it created; so does a
/// normal process exit while it is still alive (e.g. when held in a global).
///
/// ```swift
/// let server = try RedisServerProcess(options: ["appendonly": "yes"])
/// let connection = try RedisConnection(url: server.url)
/// ```
public final class RedisServerProcess: Sendable {
    /// What to run and how.
    public struct Configuration: Sendable {
        /// Program name (looked up in `PATH`) or path of the server binary.
        public var executable: String
        /// Port to listen on; `nil` picks a free one (kept across restarts).
        public var port: Int?
        /// Working directory (RDB/AOF files, log); `nil` creates a temporary one, removed on deinit.
        public var directory: String?
        /// Server options as `name: value`, overriding the defaults; each becomes `--name value`.
        public var options: [String: String]
        /// How long to wait for the first `PING` answer.
        public var startupTimeout: Duration

        /// Creates a configuration.
        public init(executable: String = "redis-server", port: Int? = nil, directory: String? = nil,
                    options: [String: String] = [:], startupTimeout: Duration = .seconds(10)) {
            self.executable = executable
            self.port = port
            self.directory = directory
            self.options = options
            self.startupTimeout = startupTimeout
        }
    }

    /// How to end the server.
    public enum StopMode: Sendable {
        /// `SIGTERM`: clean shutdown (escalates to `SIGKILL` after 10 s).
        case terminate
        /// `SIGKILL`: simulates a crash.
        case kill
    }

    /// The loopback address the server binds.
    public let host = "127.0.0.1"
    /// The working directory.
    public let directory: String
    /// The configuration it was created with.
    public let configuration: Configuration

    private let ownsDirectory: Bool
    private let state: PThreadLock<State>

    private struct State {
        var pid: pid_t?
        var port: Int
        var hasStarted = false
    }

    /// Starts a server and waits until it answers `PING`.
    public init(_ configuration: Configuration = Configuration()) throws(RedisServerProcessError) {
        self.configuration = configuration
        if let directory = configuration.directory {
            self.directory = directory
            ownsDirectory = false
        } else {
            guard let created = TemporaryDirectory.create(prefix: "eddy-redis-") else {
                throw .temporaryDirectoryUnavailable(String(cString: strerror(errno)))
            }
            self.directory = created
            ownsDirectory = true
        }
        let port = configuration.port ?? FreePort.find()
        guard let port else {
            if ownsDirectory { TemporaryDirectory.remove(directory) }
            throw .noFreePort
        }
        state = PThreadLock(State(port: port))
        do {
            try start()
        } catch {
            if ownsDirectory { TemporaryDirectory.remove(directory) }
            throw error
        }
    }

    /// Starts a server with `options` overriding the defaults.
    public convenience init(options: [String: String]) throws(RedisServerProcessError) {
        try self.init(Configuration(options: options))
    }

    deinit {
        stop(.kill)
        if ownsDirectory { TemporaryDirectory.remove(directory) }
    }

    /// The TCP port (the same across restarts).
    public var port: Int { state.withLock { $0.port } }

    /// URL of the server, with the password when `requirepass` is among the options.
    public var url: RedisURL {
        RedisURL(endpoint: .tcp(host: host, port: port), password: configuration.options["requirepass"])
    }

    /// The TLS port when the server was started with `tls-port`.
    public var tlsPort: Int? { configuration.options["tls-port"].flatMap { Int($0) } }

    /// The `rediss://` URL of the TLS port with `tls`, or nil without one.
    public func tlsURL(_ tls: RedisTLS) -> RedisURL? {
        tlsPort.map { RedisURL(endpoint: .tcp(host: host, port: $0), password: configuration.options["requirepass"], tls: tls) }
    }

    /// Process id while running.
    public var pid: Int32? { state.withLock { $0.pid } }

    /// `true` between a successful start and ``stop(_:)`` (a crash is noticed here too).
    public var isRunning: Bool {
        state.withLock { state in
            guard let pid = state.pid else { return false }
            if ChildProcess.reapIfExited(pid) != nil {
                state.pid = nil
                return false
            }
            return true
        }
    }

    /// Path of the server's log (its stdout and stderr).
    public var logPath: String { directory + "/redis.log" }

    /// The last `maxBytes` of the server's log.
    public func logTail(maxBytes: Int = 4096) -> String {
        TemporaryDirectory.tail(of: logPath, maxBytes: maxBytes)
    }

    /// Starts the server if it is not running, on the same port and directory, and waits
    /// until it answers `PING` (after loading its data, if any).
    public func start() throws(RedisServerProcessError) {
        try state.withLock { (state: inout State) throws(RedisServerProcessError) in
            if let pid = state.pid, ChildProcess.reapIfExited(pid) == nil { return }
            state.pid = nil
            // Only a port picked for the very first start may change (if someone grabbed it).
            let portMayChange = configuration.port == nil && !state.hasStarted
            var attempt = 1
            while true {
                do throws(RedisServerProcessError) {
                    try launch(&state)
                    state.hasStarted = true
                    return
                } catch {
                    guard case let .exitedDuringStartup(_, log) = error, portMayChange, attempt < 5,
                          log.contains("Address already in use") else { throw error }
                    guard let port = FreePort.find() else { throw .noFreePort }
                    state.port = port
                    attempt += 1
                }
            }
        }
    }

    /// Stops the server (no-op if it is not running) and reaps the process.
    public func stop(_ mode: StopMode = .terminate) {
        state.withLock { state in
            guard let pid = state.pid else { return }
            state.pid = nil
            switch mode {
            case .terminate:
                ChildProcess.send(SIGTERM, to: pid)
                _ = ChildProcess.waitForExit(pid, timeout: .seconds(10))
            case .kill:
                ChildProcess.send(SIGKILL, to: pid)
                _ = ChildProcess.waitForExit(pid, timeout: .seconds(10))
            }
        }
    }

    /// Stops the server with `mode`, then starts it again on the same port and directory.
    public func restart(_ mode: StopMode = .terminate) throws(RedisServerProcessError) {
        stop(mode)
        try start()
    }

    // MARK: Launching

    private func arguments(port: Int) -> [String] {
        var options: [(String, String)] = [
            ("port", String(port)),
            ("bind", host),
            ("save", ""),
            ("appendonly", "no"),
            ("dir", directory),
            ("logfile", ""),
            ("daemonize", "no"),
            ("enable-debug-command", "local"),
        ]
        for (name, value) in configuration.options.sorted(by: { $0.key < $1.key }) {
            if let index = options.firstIndex(where: { $0.0 == name }) {
                options[index].1 = value
            } else {
                options.append((name, value))
            }
        }
        return options.flatMap { ["--" + $0.0, $0.1] }
    }

    private func launch(_ state: inout State) throws(RedisServerProcessError) {
        let pid: pid_t
        switch ChildProcess.spawn(executable: configuration.executable,
                                  arguments: arguments(port: state.port), outputPath: logPath) {
        case let .success(spawned): pid = spawned
        case let .failure(error):
            throw .spawnFailed(executable: configuration.executable, reason: error.message)
        }
        do {
            try waitUntilReady(pid: pid, port: state.port)
            state.pid = pid
        } catch {
            ChildProcess.send(SIGKILL, to: pid)
            _ = ChildProcess.waitForExit(pid, timeout: .seconds(5))
            throw error
        }
    }

    private func waitUntilReady(pid: pid_t, port: Int) throws(RedisServerProcessError) {
        let url = RedisURL(endpoint: .tcp(host: host, port: port), password: configuration.options["requirepass"])
        let probe = RedisConnection.Options(connectTimeout: .milliseconds(250), commandTimeout: .seconds(2),
                                            tcpKeepAlive: false)
        let deadline = ContinuousClock.now + configuration.startupTimeout
        while true {
            if let status = ChildProcess.reapIfExited(pid) {
                throw .exitedDuringStartup(status: ChildProcess.describe(waitStatus: status), log: logTail())
            }
            if let reply = try? RedisConnection(url: url, options: probe).command("PING"),
               RedisError.code(ofServerMessage: reply.errorMessage ?? "") != "LOADING" {
                return
            }
            guard ContinuousClock.now < deadline else {
                throw .startupTimedOut(log: logTail())
            }
            RetryPolicy.sleep(.milliseconds(10))
        }
    }
}

import ArgumentParser
import Logging
import EddyCore
import EddyRedis
import EddyTopology
import Foundation
import ServiceLifecycle

/// Writes a line to standard error.
func printError(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

/// Loads a topology given as a path, or as a name under `Topologies/`.
func loadTopology(_ nameOrPath: String) throws -> Topology {
    let loader = TopologyLoader()
    var path = nameOrPath
    if !FileManager.default.fileExists(atPath: path), !path.contains("/"), !path.hasSuffix(".yaml") {
        let candidate = "Topologies/\(path).yaml"
        if FileManager.default.fileExists(atPath: candidate) { path = candidate }
    }
    do {
        if !FileManager.default.fileExists(atPath: path), let text = EmbeddedTopologies.all[nameOrPath] {
            return try loader.parse(text, file: "<embedded \(nameOrPath).yaml>")
        }
        return try loader.load(path: path)
    } catch {
        throw CLIError(error.description)
    }
}

/// The topology a command works on: the single-key form as it is, or the
/// entity `entity` of a topology with `entities:`.
func selectEntity(_ t: Topology, _ entity: String?, command: String) throws -> Topology {
    guard t.isMultiEntity else {
        if let entity { throw CLIError("topology \(t.name) has no entities (it has one key); remove --entity \(entity)") }
        return t
    }
    let names = t.entities.map(\.name).joined(separator: ", ")
    guard let entity else {
        throw CLIError("topology \(t.name) has several entities (\(names)); choose one with --entity NAME for \(command)")
    }
    guard let e = t.entity(named: entity) else {
        throw CLIError("topology \(t.name) has no entity '\(entity)' (entities: \(names))")
    }
    return e
}

/// Commands that do not support topologies with `entities:` yet.
func refuseMultiEntity(_ t: Topology, command: String) throws {
    if t.isMultiEntity {
        throw CLIError("topology \(t.name) has several entities (\(t.entities.map(\.name).joined(separator: ", "))): "
            + "\(command) does not support the entities form yet. `eddy replay --entity NAME` replays one entity "
            + "(rows, final, labels, --emit redis), `eddy get --entity NAME` reads it from Redis, and `eddy check` checks the file.")
    }
}

/// `--redis`, else `EDDY_REDIS_URL`, else the topology's sink URL.
func redisURLText(_ flag: String?, sink: String) -> String {
    flag ?? ProcessInfo.processInfo.environment["EDDY_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? sink
}

/// Where a Redis password may come from besides the URL, so none has to sit
/// in a topology file, a shell history or `ps` output. The URL's own
/// credentials win, then `--redis-password-file`, then `EDDY_REDIS_PASSWORD`;
/// the ACL user is the URL's, else `EDDY_REDIS_USERNAME`.
struct RedisCredentialOptions: ParsableArguments {
    @Option(name: .customLong("redis-password-file"),
            help: "Read the Redis password from this file (its first line), unless the URL has one. Else EDDY_REDIS_PASSWORD; the ACL user from EDDY_REDIS_USERNAME.")
    var passwordFile: String?

    /// The password and user these options and the environment give (`nil`s: none).
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (username: String?, password: String?) {
        let username = environment["EDDY_REDIS_USERNAME"].flatMap { $0.isEmpty ? nil : $0 }
        var password = environment["EDDY_REDIS_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw CLIError("cannot read --redis-password-file \(passwordFile): no such readable file")
            }
            let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
            guard !trimmed.isEmpty else {
                throw CLIError("--redis-password-file \(passwordFile) is empty: put the password on its first line")
            }
            password = String(trimmed)
        }
        if username != nil, password == nil {
            throw CLIError("EDDY_REDIS_USERNAME is set but no password is given: set EDDY_REDIS_PASSWORD or --redis-password-file (or put user:password in the URL)")
        }
        return (username, password)
    }
}

/// `redisURLText`, parsed: a single server (`redis://`, `unix://`) or a
/// cluster (`redis+cluster://`), with the credentials of `credentials`
/// where the URL has none. A malformed URL is quoted without its password.
func resolveRedisURL(_ flag: String?, sink: String, credentials: RedisCredentialOptions? = nil) throws -> RedisTarget {
    let text = redisURLText(flag, sink: sink)
    let target: RedisTarget
    do { target = try RedisTarget(parsing: text) } catch {
        throw CLIError("invalid Redis URL '\(Secrets.redactingURLPassword(text))': \(error)")
    }
    let withTLS = target.fillingTLS(redisTLSFromEnvironment())
    if withTLS.tls?.insecure == true {
        printError("warning: TLS to Redis at \(withTLS) does not verify the server's certificate (insecure=true); use it for tests only")
    }
    guard let credentials else { return withTLS }
    let (username, password) = try credentials.resolve()
    return withTLS.fillingCredentials(username: username, password: password)
}

/// TLS settings for `rediss://` URLs that do not give them in their query:
/// `EDDY_REDIS_TLS_CA`, `EDDY_REDIS_TLS_CERT`, `EDDY_REDIS_TLS_KEY`,
/// `EDDY_REDIS_TLS_SNI`, `EDDY_REDIS_TLS_INSECURE=true`.
func redisTLSFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> RedisTLS {
    func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
    return RedisTLS(caFile: value("EDDY_REDIS_TLS_CA"), certFile: value("EDDY_REDIS_TLS_CERT"),
                    keyFile: value("EDDY_REDIS_TLS_KEY"), serverName: value("EDDY_REDIS_TLS_SNI"),
                    insecure: value("EDDY_REDIS_TLS_INSECURE") == "true")
}

func resolveRedisURL(_ flag: String?, topology t: Topology, credentials: RedisCredentialOptions? = nil) throws -> RedisTarget {
    try resolveRedisURL(flag, sink: t.sink.redisURL, credentials: credentials)
}

/// A connection for a command-line tool, or a clear error.
func connectRedis(_ url: RedisTarget, clientName: String, connectTimeout: Duration = .seconds(2),
                  commandTimeout: Duration) throws -> RedisClient {
    do {
        return try RedisClient(url, options: .init(connectTimeout: connectTimeout, commandTimeout: commandTimeout,
                                                   clientName: clientName))
    } catch {
        throw CLIError("cannot reach Redis at \(url): \(error)")
    }
}

/// A user-facing failure: printed without a stack of types.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A service whose failure reads as `label: error` (the group rethrows the
/// first service's error, and that is what the user sees).
struct FailureLabel: Service {
    let service: any Service
    let label: String
    init(_ service: any Service, _ label: String) {
        self.service = service
        self.label = label
    }
    func run() async throws {
        do { try await service.run() } catch { throw CLIError("\(label): \(error)") }
    }
}

/// Monotonic seconds, for rates in summaries (never in the core).
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Resident set size in bytes of process `pid` (nil: this process); 0 when unknown.
func residentBytes(pid: Int32? = nil) -> Int {
    let path = "/proc/\(pid.map(String.init) ?? "self")/statm"
    guard let s = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
    let parts = s.split(separator: " ")
    guard parts.count > 1, let pages = Int(parts[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// The embedded clickstream topology with each `(old, new)` text replaced
/// once (benchmarks that need other topics, prefixes or properties).
func clickstreamTopologyText(replacing edits: [(old: String, new: String)]) throws -> String {
    var text = EmbeddedTopologies.all["clickstream"]!
    for edit in edits {
        guard let range = text.range(of: edit.old) else {
            throw CLIError("the embedded clickstream topology no longer holds \(edit.old.debugDescription)")
        }
        text.replaceSubrange(range, with: edit.new)
    }
    return text
}

/// CPU time of the calling thread, in seconds: a rate per CPU-second is
/// what one core does, whatever else the machine runs.
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Sends every logger's lines at `level` and above to standard error (once
/// per process, before any logger is made).
func logToStandardError(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var h = LazyMetadataLogHandler(StreamLogHandler.standardError(label: label))
        h.logLevel = level
        return h
    }
}

/// `StreamLogHandler`'s output, but setting metadata only stores it:
/// `StreamLogHandler` formats all its metadata again on every change, and
/// Hummingbird sets a request id on each request's logger (about 5% of
/// `eddy serve`'s CPU per request, for lines that are mostly never logged).
/// The metadata is formatted when a line is logged, as the message's.
struct LazyMetadataLogHandler: LogHandler {
    private var stream: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(_ stream: StreamLogHandler) { self.stream = stream }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty { event.metadata = metadata.merging(event.metadata ?? [:]) { $1 } }
        stream.log(event: event)
    }
}

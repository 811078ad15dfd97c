import EddyCore
import EddyMetrics
import EddyRedis
import EddyStore
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import Metrics
import NIOCore
import ServiceLifecycle

/// A readiness or liveness check: `ok`, and a short detail for the reply.
public struct HealthCheck: Sendable {
    public var name: String
    public var check: @Sendable () async -> (ok: Bool, detail: String)

    public init(_ name: String, _ check: @escaping @Sendable () async -> (ok: Bool, detail: String)) {
        self.name = name
        self.check = check
    }

    /// Redis answers PING (cached for a second).
    public static func redis(_ lanes: RedisLanes, name: String = "redis") -> HealthCheck {
        HealthCheck(name) { await lanes.ping() }
    }
}

/// The HTTP server of `eddy serve` and `eddy run --http` (Hummingbird 2).
///
/// Routes (every reply is JSON, but `/metrics`):
///
/// | route | reply |
/// | --- | --- |
/// | `GET /v1/features/{topology}/{key}[?at=T]` | 200: the entity's features, exactly the `FCALL eddy_<topology>_features` object; 404 `{"key":...,"found":false}` for an unknown entity; 404 `{"error":...}` for an unknown topology |
/// | `POST /v1/features/{topology}[?at=T]`, body `["k1","k2",...]` | 200: a JSON list in key order, `{"key":...,"found":false}` for unknown entities; one pipelined round trip per 512 keys |
/// | `GET /metrics` | Prometheus text |
/// | `GET /healthz` | 200 `{"status":"ok"}` while the process (the worker's stages) runs, else 503 |
/// | `GET /readyz` | 200 when every readiness check passes (Redis answers; the worker has partitions), else 503, with each check's detail |
///
/// `T` is epoch milliseconds or RFC 3339 (default: the Redis server's
/// clock); anything else is 400. A body that is not a JSON list of strings
/// (or integers) is 400, over `maxBodyBytes` (1 MiB) 413, over `maxKeys`
/// keys 400. Redis unreachable: 503 `{"error":...}`; the next request
/// connects again. A read Redis fails for one key (`EDDYSTATE`,
/// `WRONGTYPE`): 500 with Redis's message.
public final class EddyHTTPServer: Sendable {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var maxBodyBytes: Int
        public var maxKeys: Int
        /// A name for `/readyz` and logs (`serve`, `worker`).
        public var role: String
        /// When set, every request needs one of these bearer tokens (401 without).
        public var tokens: BearerTokens?
        /// With ``tokens``: `/healthz` and `/readyz` answer without one.
        public var openHealth: Bool
        /// A connection must deliver a complete request head this soon after opening or after
        /// its previous response (idle keep-alive and slow clients); else it is closed.
        public var requestHeadTimeout: Duration = .seconds(30)
        /// Limits of the request head (`RequestHeadLimits`): the request line (414 past it), one
        /// header line, the whole head and the number of header fields (431 past them).
        public var maxRequestLineBytes = 8 * 1024
        public var maxHeaderFieldBytes = 8 * 1024
        public var maxHeaderListBytes = 16 * 1024
        public var maxHeaderFields = 100
        /// TLS on the port (`--tls-cert`, `--tls-key`); nil: plaintext HTTP.
        public var tls: ServerTLS?
        /// More routes (the `/ui` console), added after the built-in ones and behind the
        /// same bearer-token middleware.
        public var extraRoutes: (@Sendable (Router<BasicRequestContext>) -> Void)?

        public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 1 << 20, maxKeys: Int = 10_000,
                    role: String = "serve", tokens: BearerTokens? = nil, openHealth: Bool = false) {
            self.host = host
            self.port = port
            self.maxBodyBytes = maxBodyBytes
            self.maxKeys = maxKeys
            self.role = role
            self.tokens = tokens
            self.openHealth = openHealth
        }
    }

    /// A topology served, with the Redis connections its reads use.
    public struct Served: Sendable {
        public var topology: Topology
        public var redis: RedisLanes
        let reader: TopologyReader
        public init(topology: Topology, redis: RedisLanes) {
            self.topology = topology
            self.redis = redis
            self.reader = TopologyReader(topology)
        }
    }

    public let options: Options
    public let hub: MetricsHub
    let served: [String: Served]
    let readiness: [HealthCheck]
    let liveness: [HealthCheck]
    let logger: Logger
    let requestMetrics: RequestMetrics
    /// Per topology: keys read and found, keys read and missing.
    let keyCounters: [String: (found: Metrics.Counter, missing: Metrics.Counter)]
    let redisFailures: Metrics.Counter?

    public init(options: Options, topologies: [Served], hub: MetricsHub, readiness: [HealthCheck],
                liveness: [HealthCheck] = [], logger: Logger = Logger(label: "eddy.http")) {
        self.options = options
        self.hub = hub
        var served: [String: Served] = [:]
        for s in topologies { served[s.topology.name] = s }
        self.served = served
        self.readiness = readiness
        self.liveness = liveness
        self.logger = logger
        requestMetrics = RequestMetrics(factory: hub.factory)
        var keyCounters: [String: (found: Metrics.Counter, missing: Metrics.Counter)] = [:]
        for name in served.keys.sorted() {
            keyCounters[name] = (
                Metrics.Counter(label: "eddy_serve_keys_total", dimensions: [("topology", name), ("result", "found")],
                                factory: hub.factory),
                Metrics.Counter(label: "eddy_serve_keys_total", dimensions: [("topology", name), ("result", "missing")],
                                factory: hub.factory))
        }
        self.keyCounters = keyCounters
        redisFailures = served.isEmpty ? nil
            : Metrics.Counter(label: "eddy_serve_redis_unavailable_total", factory: hub.factory)
    }

    /// The router with every route (requests are counted around it, see `MeteredResponder`).
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        if let tokens = options.tokens {
            router.add(middleware: BearerAuthMiddleware(tokens: tokens, openHealth: options.openHealth))
        }
        router.get("/v1/features/:topology/:key") { request, context in
            await self.getOne(request, context)
        }
        router.post("/v1/features/:topology") { request, context in
            await self.getMany(request, context)
        }
        router.get("/metrics") { _, _ in
            let text = self.hub.scrape()
            return Response(status: .ok, headers: [.contentType: MetricsHub.contentType],
                            body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        router.get("/healthz") { _, _ in await self.health(self.liveness, okKey: "status") }
        router.get("/readyz") { _, _ in await self.health(self.readiness, okKey: "ready") }
        options.extraRoutes?(router)
        return router
    }

    /// The application; `onServerRunning` gets the bound port (useful with port 0).
    public func makeApplication(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws
        -> some ApplicationProtocol
    {
        let fastPath = fastPathRoutes()
        let headTimeout = TimeAmount(options.requestHeadTimeout)
        let limits = RequestHeadLimits.Limits(
            maxRequestLineBytes: options.maxRequestLineBytes, maxHeaderLineBytes: options.maxHeaderFieldBytes,
            maxHeadBytes: options.maxHeaderListBytes, maxHeaderFields: options.maxHeaderFields)
        let hard = RequestHeadLimits.hardDecoderLimits
        // Per connection, in pipeline order: limits first (a refused head reaches nothing
        // else), the head deadline, then the fast path.
        let http1 = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [RequestHeadLimits(limits: limits), RequestHeadDeadline(timeout: headTimeout)]
                + (fastPath.map { [FeatureGetFastPath(routes: $0)] } ?? []),
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: max(hard.fieldBytes, options.maxHeaderFieldBytes, options.maxRequestLineBytes),
                maxHeaderListSize: max(hard.listBytes, options.maxHeaderListBytes),
                maxHeaderFieldCount: max(hard.fields, options.maxHeaderFields + 1))))
        let server: HTTPServerBuilder
        if let tls = options.tls {
            server = try .tls(http1, tlsConfiguration: tls.configuration)
        } else {
            server = http1
        }
        return Application(
            responder: MeteredResponder(inner: makeRouter().buildResponder(), metrics: requestMetrics),
            server: server,
            configuration: .init(address: .hostname(options.host, port: options.port),
                                 serverName: nil),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// The topologies whose single-key GETs are answered in the channel
    /// pipeline (`FeatureGetFastPath`): those read on the event loops; nil when none is.
    func fastPathRoutes() -> FastPathRoutes? {
        var topologies: [String: FastPathRoutes.Topology] = [:]
        for (name, s) in served {
            guard let loopReads = s.redis.loopReads, let counters = keyCounters[name] else { continue }
            topologies[name] = .init(
                reader: s.reader, loopReads: loopReads, found: counters.found, missing: counters.missing,
                answered: Metrics.Counter(label: "eddy_serve_event_loop_reads_total", dimensions: [("topology", name)],
                                          factory: hub.factory))
        }
        guard !topologies.isEmpty else { return nil }
        return FastPathRoutes(
            topologies: topologies, tokens: options.tokens,
            ok: requestMetrics.metrics(route: FastPathRoutes.route, method: "GET", status: 200),
            notFound: requestMetrics.metrics(route: FastPathRoutes.route, method: "GET", status: 404))
    }

    // MARK: Features

    func getOne(_ request: Request, _ context: BasicRequestContext) async -> Response {
        guard let served = topology(context) else { return unknownTopology(context) }
        let at: Int64?
        switch readTime(request) {
        case .failure(let e): return e.response
        case .success(let t): at = t
        }
        guard let raw = context.parameters.get("key") else { return Self.error(.badRequest, "missing key") }
        let key = Self.percentDecoded(raw)
        switch await read(served, keys: [key], at: at) {
        case .failure(let e):
            return e.response
        case .success(let objects):
            if let object = objects[0] {
                keyCounters[served.topology.name]?.found.increment()
                return Self.json(.ok, object)
            }
            keyCounters[served.topology.name]?.missing.increment()
            return Self.json(.notFound, FeatureClient.notFoundObject(key: key))
        }
    }

    func getMany(_ request: Request, _ context: BasicRequestContext) async -> Response {
        guard let served = topology(context) else { return unknownTopology(context) }
        let at: Int64?
        switch readTime(request) {
        case .failure(let e): return e.response
        case .success(let t): at = t
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > options.maxBodyBytes {
            return Self.error(.contentTooLarge, "body of \(length) bytes is over the limit of \(options.maxBodyBytes) bytes")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: options.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return Self.error(.contentTooLarge, "body is over the limit of \(options.maxBodyBytes) bytes")
        } catch {
            return Self.error(.badRequest, "cannot read the body: \(error)")
        }
        let keys: [String]
        switch Self.parseKeys(Data(body.readableBytesView)) {
        case .failure(let message): return Self.error(.badRequest, message.description)
        case .success(let k): keys = k
        }
        if keys.count > options.maxKeys {
            return Self.error(.badRequest, "\(keys.count) keys; at most \(options.maxKeys) per request")
        }
        switch await read(served, keys: keys, at: at) {
        case .failure(let e):
            return e.response
        case .success(let objects):
            var out: [UInt8] = [UInt8(ascii: "[")]
            out.reserveCapacity(objects.reduce(2) { $0 + ($1?.count ?? 40) + 1 })
            var found = 0
            for (i, (key, object)) in zip(keys, objects).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if let object {
                    out += object
                    found += 1
                } else {
                    out += FeatureClient.notFoundObject(key: key)
                }
            }
            out.append(UInt8(ascii: "]"))
            keyCounters[served.topology.name]?.found.increment(by: found)
            keyCounters[served.topology.name]?.missing.increment(by: keys.count - found)
            return Self.json(.ok, out)
        }
    }

    /// Batched, pipelined reads through the topology's Redis lanes; errors as responses.
    /// `keys` are raw: with `key: {hash: ...}` their HMACs are read.
    func read(_ served: Served, keys: [String], at: Int64?) async -> Result<[[UInt8]?], ErrorResponse> {
        let entityKeys = served.topology.keyHashing == nil ? keys : keys.map(served.topology.entityKey)
        switch await served.redis.read(served.reader, keys: entityKeys, at: at) {
        case .success(let objects):
            return .success(objects)
        case .failure(.unavailable(let message)):
            redisFailures?.increment()
            logger.warning("\(message)")
            return .failure(ErrorResponse(Self.error(.serviceUnavailable, message)))
        case .failure(.failed(let message)):
            return .failure(ErrorResponse(Self.error(.internalServerError, message)))
        }
    }

    func topology(_ context: BasicRequestContext) -> Served? {
        context.parameters.get("topology").flatMap { served[Self.percentDecoded($0)] }
    }

    /// A path component with `%XX` escapes decoded (Foundation's decoding
    /// costs a few percent of a read, so only when there is a `%`).
    static func percentDecoded(_ s: some StringProtocol) -> String {
        s.utf8.contains(UInt8(ascii: "%")) ? (s.removingPercentEncoding ?? String(s)) : String(s)
    }

    func unknownTopology(_ context: BasicRequestContext) -> Response {
        let name = context.parameters.get("topology") ?? ""
        let known = served.keys.sorted().joined(separator: ", ")
        return Self.error(.notFound, "unknown topology '\(name.removingPercentEncoding ?? name)'; this server serves: \(known.isEmpty ? "none" : known)")
    }

    func readTime(_ request: Request) -> Result<Int64?, ErrorResponse> {
        guard let text = request.uri.queryParameters.get("at") else { return .success(nil) }
        let decoded = text.removingPercentEncoding ?? text
        guard let t = ReadTime.parse(decoded) else {
            return .failure(ErrorResponse(Self.error(
                .badRequest, "at='\(decoded)' is neither epoch milliseconds nor RFC 3339 (e.g. 2024-05-01T12:40:00Z)")))
        }
        return .success(t)
    }

    /// `["k1","k2",...]` (strings or integers) -> keys; else a message.
    static func parseKeys(_ data: Data) -> Result<[String], BadRequest> {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            return .failure(BadRequest("body is not valid JSON; expected a JSON list of keys, e.g. [\"u1\",\"u2\"]"))
        }
        guard let list = value as? [Any] else {
            return .failure(BadRequest("body must be a JSON list of keys, e.g. [\"u1\",\"u2\"]"))
        }
        guard let elements = try? JSONDecoder().decode([KeyElement].self, from: data) else {
            return .failure(BadRequest("every key must be a JSON string (or an integer); got \(list.count) elements"))
        }
        let keys = elements.map(\.value)
        return .success(keys)
    }

    // MARK: Health

    func health(_ checks: [HealthCheck], okKey: String) async -> Response {
        var ok = true
        var details: [String] = []
        for c in checks {
            let (pass, detail) = await c.check()
            ok = ok && pass
            details.append("\(Self.quote(c.name)):{\"ok\":\(pass),\"detail\":\(Self.quote(detail))}")
        }
        let text = "{\"\(okKey)\":\(okKey == "status" ? (ok ? "\"ok\"" : "\"failing\"") : String(ok)),\"role\":\(Self.quote(options.role)),\"checks\":{\(details.joined(separator: ","))}}"
        return Self.json(ok ? .ok : .serviceUnavailable, Array(text.utf8))
    }

    // MARK: Replies

    static func json(_ status: HTTPResponse.Status, _ bytes: [UInt8]) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, Array("{\"error\":\(quote(message))}".utf8))
    }

    static func quote(_ s: String) -> String {
        var w = JSONWriter(capacity: s.utf8.count + 2)
        w.string(s)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

/// A failure already turned into a response.
struct ErrorResponse: Error {
    let response: Response
    init(_ r: Response) { response = r }
}

struct BadRequest: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One key of a POST body: a string, or an integer written in decimal.
struct KeyElement: Decodable {
    let value: String
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            value = s
        } else {
            value = String(try c.decode(Int64.self))
        }
    }
}

extension EddyHTTPServer {
    /// `HOST:PORT`, `:PORT` (all interfaces: 0.0.0.0), `[v6]:PORT` or `PORT` (loopback).
    public static func parseListen(_ text: String) -> (host: String, port: Int)? {
        var host = "127.0.0.1"
        var portText = Substring(text)
        if let colon = text.lastIndex(of: ":") {
            let h = text[..<colon]
            host = h.isEmpty ? "0.0.0.0" : String(h.hasPrefix("[") && h.hasSuffix("]") ? h.dropFirst().dropLast() : h)
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else { return nil }
        return (host, port)
    }
}

/// A server running in the background (tests, `eddy run --http`).
public final class RunningServer: Sendable {
    /// The bound port.
    public let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>

    init(port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.group = group
        self.task = task
    }

    /// Stops accepting, finishes the requests in flight, and returns.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }
}

extension EddyHTTPServer {
    /// Starts serving in the background; returns once the port is bound.
    ///
    /// - Parameter executor: where the server's tasks (and so its request
    ///   handlers, which inherit it) prefer to run; nil: the global
    ///   concurrent executor. A process whose other code blocks the
    ///   cooperative pool's few threads (tests on a 2-core machine) gives
    ///   the server threads of its own this way.
    public func start(executorPreference executor: (any TaskExecutor)? = nil) async throws -> RunningServer {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = try makeApplication { port in continuation.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task(executorPreference: executor) {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            if case .failure(let error) = await task.result { throw error }
            throw ServerStartError(description: "the server stopped before it was listening")
        }
        return RunningServer(port: port, group: group, task: task)
    }
}

struct ServerStartError: Error, CustomStringConvertible {
    let description: String
}

import EddyCore
import EddyMonitor
import EddyRedis
import EddyServer
import EddyStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web console of `eddy serve` at `/ui`: Topologies, Entity inspector, Distributions,
/// Workers. Pages are rendered on the server (`Views`, inline SVG, no JavaScript, the style
/// sheet embedded). Its Redis reads (the Function at T, `HGETALL`, `SCAN` for the sample) go
/// through connections of its own, on a queue per topology, so they never block an event loop.
public final class Console: Sendable {
    public struct Options: Sendable {
        /// Entities sampled for Distributions.
        public var sample: Int = 1000
        /// Saved drift baselines, by topology name.
        public var baselines: [String: Drift.Baseline] = [:]
        /// Worker `/metrics` URLs to scrape, and how often (seconds).
        public var workerMetrics: [String] = []
        public var scrapeInterval: Double = 5
        /// The bearer token sent with each scrape (workers started with
        /// `eddy run --http … --auth-token-file`); nil: none.
        public var workerMetricsToken: String?
        /// Reads at T drawn per window chart.
        public var chartPoints: Int = 41
        public init() {}
    }

    let served: [String: Served]
    let order: [String]
    let options: Options
    let tokens: BearerTokens?
    public let history: WorkerHistory
    private let scraper: Locked<Scraper?>

    final class Served: @unchecked Sendable {
        let topology: Topology
        let connect: @Sendable () throws -> RedisClient
        let queue: DispatchQueue
        // Used only on `queue`.
        var client: RedisClient?
        var reader: FeatureClient?
        // Distributions: the last sample and when it was taken (used only on `queue`).
        var sample: (at: Double, value: Views.Distributions)?

        init(topology: Topology, connect: @escaping @Sendable () throws -> RedisClient) {
            self.topology = topology
            self.connect = connect
            queue = DispatchQueue(label: "eddy.console.\(topology.name)")
        }

        /// Runs `body` on the queue with a connected client; a failed connection is dropped so
        /// the next call connects again.
        func run<T: Sendable>(_ body: @escaping @Sendable (Served, RedisClient, FeatureClient) throws -> T) async -> Result<T, any Error> {
            await withCheckedContinuation { continuation in
                queue.async {
                    do {
                        if self.client == nil {
                            let c = try self.connect()
                            self.client = c
                            self.reader = FeatureClient(client: c, topology: self.topology)
                        }
                        continuation.resume(returning: .success(try body(self, self.client!, self.reader!)))
                    } catch {
                        if error is RedisError {
                            self.client?.close()
                            self.client = nil
                            self.reader = nil
                        }
                        continuation.resume(returning: .failure(error))
                    }
                }
            }
        }
    }

    /// - Parameters:
    ///   - connect: opens a Redis client for a topology (its own connection).
    ///   - tokens: the server's bearer tokens, when it requires them (for `/ui/login`).
    public init(topologies: [Topology], connect: @escaping @Sendable (Topology) throws -> RedisClient,
                tokens: BearerTokens?, options: Options = Options()) {
        var served: [String: Served] = [:]
        for t in topologies { served[t.name] = Served(topology: t) { try connect(t) } }
        self.served = served
        self.order = topologies.map(\.name)
        self.options = options
        self.tokens = tokens
        self.history = WorkerHistory(urls: options.workerMetrics)
        self.scraper = Locked(nil)
    }

    /// Starts scraping the workers' `/metrics` (when any is given).
    public func start() {
        guard !options.workerMetrics.isEmpty else { return }
        let s = Scraper(urls: options.workerMetrics, interval: options.scrapeInterval, history: history,
                        token: options.workerMetricsToken)
        scraper.set(s)
        s.start()
    }

    public func stop() { scraper.get()?.stop() }

    /// Adds the `/ui` routes.
    public func register(on router: Router<BasicRequestContext>) {
        router.get("/ui") { _, _ in Self.redirect("/ui/topologies") }
        router.get("/ui/topologies") { _, _ in Self.html(self.topologiesPage()) }
        router.get("/ui/entity") { request, _ in await self.entityPage(Self.query(request)) }
        router.get("/ui/json") { request, _ in await self.json(Self.query(request)) }
        router.get("/ui/distributions") { request, _ in await self.distributionsPage(Self.query(request)) }
        router.get("/ui/workers") { _, _ in
            Self.html(Views.workers(self.history.urls.map { self.history.summary($0, now: Date().timeIntervalSince1970) },
                                    interval: self.options.scrapeInterval))
        }
        router.get("/ui/login") { _, _ in Self.html(Views.login(error: nil)) }
        router.post("/ui/login") { request, _ in await self.login(request) }
    }

    // MARK: Pages

    func topologiesPage() -> String {
        Views.topologies(order.map { Views.TopologyInfo(topology: served[$0]!.topology, functionName: FunctionLibrary(topology: served[$0]!.topology).functionName) })
    }

    func pick(_ q: [String: String]) -> Served? {
        if let name = q["topology"], !name.isEmpty { return served[name] }
        return order.first.flatMap { served[$0] }
    }

    func entityPage(_ q: [String: String]) async -> Response {
        guard let s = pick(q) else { return Self.html(Views.entity(.init(topologies: order, topology: q["topology"] ?? "", key: q["key"] ?? "", atText: q["at"] ?? "", readAt: 0)).replacingOccurrences(of: "<form", with: "<p class=\"error\">unknown topology</p><form", options: [], range: nil), status: .notFound) }
        let key = q["key"] ?? ""
        let atText = (q["at"] ?? "").trimmingCharacters(in: .whitespaces)
        var at: Int64?
        var model = Views.Entity(topologies: order, topology: s.topology.name, key: key, atText: atText,
                                 readAt: Int64(Date().timeIntervalSince1970 * 1000))
        if !atText.isEmpty {
            guard let t = ReadTime.parse(atText) else {
                model.error = "at '\(atText)' is neither epoch milliseconds nor RFC 3339 (e.g. 2024-05-01T12:40:00Z)"
                return Self.html(Views.entity(model), status: .badRequest)
            }
            at = t
            model.readAt = t
        }
        guard !key.isEmpty else { return Self.html(Views.entity(model)) }
        let points = max(options.chartPoints, 2)
        let base = model
        let readAt = at
        let result = await s.run { served, client, reader in
            try Self.readEntity(base, at: readAt, topology: served.topology, client: client, reader: reader, points: points)
        }
        switch result {
        case .success(let m): return Self.html(Views.entity(m))
        case .failure(let error):
            model.error = "reading from Redis failed: \(error)"
            return Self.html(Views.entity(model), status: .serviceUnavailable)
        }
    }

    /// The Entity view's data: the features at T, the window columns over T, lists, sessions
    /// and the stored hash (blocking; on the topology's queue).
    static func readEntity(_ base: Views.Entity, at: Int64?, topology t: Topology, client: RedisClient,
                           reader: FeatureClient, points: Int) throws -> Views.Entity {
        var m = base
        guard let object = try reader.features(keys: [m.key], at: at)[0] else {
            m.found = false
            return m
        }
        m.found = true
        guard let (values, parsed) = Views.featureValues(object, columns: t.outputColumns) else {
            m.error = "the Function returned something that is not a JSON object"
            return m
        }
        m.values = values
        m.keyTime = (parsed["key_time"] as? NSNumber)?.int64Value
        // last_n lists and sessions.
        for f in t.features {
            switch f.kind {
            case .lastN:
                let items = (parsed[f.name] as? [Any] ?? []).map { ($0 as? String) ?? Views.jsonText($0) }
                m.lists.append((f.name, items))
            case .session(let gap):
                func num(_ suffix: String) -> Double? { (parsed[f.name + suffix] as? NSNumber)?.doubleValue }
                if let start = num("_start"), let last = num("_last") {
                    m.sessions.append(.init(name: f.name, start: start, last: last, events: Int(num("_events") ?? 0),
                                            active: (parsed[f.name + "_active"] as? Bool) ?? false, gapMs: gap))
                }
            default: break
            }
        }
        // Window columns over T: reads from T - window to T + window.
        var columns: [(name: String, windowMs: Int64)] = []
        for f in t.features {
            switch f.kind {
            case .window(_, _, let w, _) where w > 0: columns.append((f.name, w))
            case .tiled(let agg, _, let w, _) where w > 0:
                switch agg {
                case .distinctCount, .variance, .stddev: columns.append((f.name, w))
                case .percentile: if let first = f.outputNames.first { columns.append((first, w)) }
                default: break
                }
            default: break
            }
        }
        var cache: [Int64: [String: Any]] = [:]
        func read(_ time: Int64) -> [String: Any]? {
            if let hit = cache[time] { return hit }
            guard let bytes = try? reader.features(keys: [m.key], at: time)[0],
                let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            else { return nil }
            cache[time] = obj
            return obj
        }
        for (name, w) in columns {
            var series: [SVG.Point] = []
            for i in 0..<points {
                let time = m.readAt - w + Int64(Double(2 * w) * Double(i) / Double(points - 1))
                guard let obj = read(time) else { continue }
                let v = (obj[name] as? NSNumber)?.doubleValue ?? (obj[name] is NSNull ? nil : nil)
                if let v { series.append(.init(Double(time), v)) }
            }
            m.charts.append(.init(feature: name, windowMs: w, readAt: m.readAt, points: series))
        }
        // The stored hash.
        let replies = try client.pipeline(count: 1) { _, b in
            b.add("HGETALL")
            b.addJoined(t.sink.keyPrefix, m.key)
        }
        if let flat = replies.first?.array {
            var pairs: [(field: [UInt8], value: [UInt8])] = []
            var i = 0
            while i + 1 < flat.count {
                pairs.append((flat[i].bytes ?? [], flat[i + 1].bytes ?? []))
                i += 2
            }
            (m.raw, m.stateBytes) = Views.rawFields(pairs)
        } else if let error = replies.first?.errorMessage {
            m.error = "HGETALL: \(error)"
        }
        return m
    }

    func json(_ q: [String: String]) async -> Response {
        guard let s = pick(q), let key = q["key"], !key.isEmpty else {
            return Self.response(.badRequest, "application/json", "{\"error\":\"give topology and key\"}")
        }
        var at: Int64?
        if let text = q["at"], !text.isEmpty {
            guard let t = ReadTime.parse(text) else { return Self.response(.badRequest, "application/json", "{\"error\":\"bad at\"}") }
            at = t
        }
        let readAt = at
        let result = await s.run { _, _, reader in try reader.features(keys: [key], at: readAt)[0] }
        switch result {
        case .success(let object?): return Self.response(.ok, "application/json", String(decoding: object, as: UTF8.self))
        case .success(nil): return Self.response(.notFound, "application/json", String(decoding: FeatureClient.notFoundObject(key: key), as: UTF8.self))
        case .failure(let e): return Self.response(.serviceUnavailable, "application/json", "{\"error\":\(Self.jsonString("\(e)"))}")
        }
    }

    func distributionsPage(_ q: [String: String]) async -> Response {
        guard let s = pick(q) else { return Self.html(HTML.page(title: "Distributions", active: "/ui/distributions", body: "<p class=\"error\">unknown topology</p>"), status: .notFound) }
        let limit = options.sample
        let baseline = options.baselines[s.topology.name]
        let names = order
        let fresh = q["refresh"] != nil
        let result = await s.run { served, client, reader in
            let now = Date().timeIntervalSince1970
            if !fresh, let cached = served.sample, now - cached.at < 15 { return cached.value }
            let keys = try Drift.sampleKeys(client, prefix: served.topology.sink.keyPrefix, limit: limit)
            let (features, entities) = try Drift.distributions(reader, keys: keys, at: nil)
            let columns = FeatureBuckets.driftColumns(served.topology)
            let info = baseline.map { b in
                "\(b.sampledKeys) entities sampled at \(Format.time(Double(b.createdAtMs)))"
            }
            let value = Views.Distributions(
                topologies: names, topology: served.topology.name, sampledEntities: entities, sampleLimit: limit,
                takenAtMs: Int64(now * 1000), baselineInfo: info,
                features: columns.map { Views.Distribution(feature: $0, current: features[$0] ?? FeatureDistribution(), baseline: baseline?.features[$0]) })
            served.sample = (now, value)
            return value
        }
        switch result {
        case .success(let d): return Self.html(Views.distributions(d))
        case .failure(let error):
            let d = Views.Distributions(topologies: names, topology: s.topology.name, sampledEntities: 0, sampleLimit: limit,
                                        takenAtMs: Int64(Date().timeIntervalSince1970 * 1000), baselineInfo: nil, features: [],
                                        error: "sampling Redis failed: \(error)")
            return Self.html(Views.distributions(d), status: .serviceUnavailable)
        }
    }

    func login(_ request: Request) async -> Response {
        guard let tokens else { return Self.redirect("/ui/topologies") }
        let body = (try? await request.body.collect(upTo: 16 * 1024)).map { String(buffer: $0) } ?? ""
        let token = HTML.formDecode(body)["token"] ?? ""
        guard !token.isEmpty, tokens.allows(authorization: "Bearer " + token) else {
            return Self.html(Views.login(error: "that token is not accepted"), status: .unauthorized)
        }
        var r = Self.redirect("/ui/topologies")
        // `Secure` when a TLS proxy in front says the browser spoke https (plain http would drop it).
        let https = request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
        r.headers[.setCookie] = "\(BearerTokens.consoleCookie)=\(HTML.percentEscape(token)); Path=/ui; HttpOnly; SameSite=Strict"
            + (https ? "; Secure" : "")
        return r
    }

    // MARK: Replies

    static func query(_ request: Request) -> [String: String] {
        HTML.formDecode(request.uri.query ?? "")
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var r = response(status, "text/html; charset=utf-8", text)
        r.headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
        r.headers[.cacheControl] = "no-store"
        return r
    }

    static func response(_ status: HTTPResponse.Status, _ type: String, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    static func jsonString(_ s: String) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed])) ?? Data("\"\"".utf8), as: UTF8.self)
    }
}

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ v: Value) { value = v }
    func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: Value) { lock.lock(); value = v; lock.unlock() }
}

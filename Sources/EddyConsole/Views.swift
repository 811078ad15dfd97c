import EddyCore
import EddyMonitor
import Foundation

/// The console's pages as pure functions of their data: no I/O, every user-supplied or
/// stored text HTML-escaped, every key in a URL percent-escaped.
public enum Views {
    // MARK: Topologies

    /// What a topology's feature is, as the topology file says it.
    public static func describe(_ f: FeatureSpec) -> (kind: String, field: String, window: String, hop: String, details: String) {
        func win(_ w: Int64) -> String { w == 0 ? "lifetime" : Format.duration(w) }
        func hop(_ w: Int64, _ h: Int64) -> String { w == 0 ? "–" : Format.duration(h) }
        switch f.kind {
        case .lastN(let field, let n, let distinct):
            return ("last_n", field.description, "–", "–", "n: \(n)" + (distinct ? ", distinct" : ""))
        case .session(let gap):
            return ("session", "–", "–", "–", "gap: \(Format.duration(gap))")
        case .window(let agg, let field, let w, let h):
            return (agg.rawValue, field?.description ?? "–", win(w), hop(w, h), "")
        case .tiled(let agg, let field, let w, let h):
            var details = ""
            switch agg {
            case .distinctCount(let p, let limit): details = "precision: \(p), exact_limit: \(limit)"
            case .percentile(let qs, let acc): details = "quantiles: \(qs.map { SVG.short($0) }.joined(separator: ", ")), relative_accuracy: \(SVG.short(acc))"
            case .countBy(let top, let maxValues): details = "top: \(top), max_values: \(maxValues)"
            default: break
            }
            return (agg.kindName, field.description, win(w), hop(w, h), details)
        case .timeSince:
            return ("time_since", "–", "–", "–", "")
        }
    }

    /// One topology as the Topologies view shows it. `functionName`: its read Function.
    public struct TopologyInfo: Sendable {
        public var topology: Topology
        public var functionName: String
        public init(topology: Topology, functionName: String) {
            self.topology = topology
            self.functionName = functionName
        }
    }

    public static func topologies(_ list: [TopologyInfo]) -> String {
        var body = ""
        if list.isEmpty { body += "<p class=\"muted\">No topology is served.</p>" }
        for info in list {
            let t = info.topology
            let key: String
            switch t.key {
            case .field(let p): key = "field <code>\(HTML.escape(p.description))</code>"
            case .messageKey: key = "the Kafka message key"
            case .fields(let ps): key = "fields " + ps.map { "<code>\(HTML.escape($0.description))</code>" }.joined(separator: " | ")
            }
            let time: String
            switch t.time {
            case .field(let p, let unit): time = "field <code>\(HTML.escape(p.description))</code> (\(HTML.escape(unit.rawValue)))"
            case .messageTimestamp: time = "the Kafka message timestamp"
            }
            body += "<section class=\"card topology\" id=\"t-\(HTML.escape(t.name))\"><h2>\(HTML.escape(t.name))</h2><table>"
            body += "<tr><th>source</th><td>\(HTML.escape(t.source.format)) from topic\(t.source.topics.count == 1 ? "" : "s") <code>\(HTML.escape(t.source.topics.joined(separator: ", ")))</code>, group <code>\(HTML.escape(t.source.group))</code></td></tr>"
            body += "<tr><th>key</th><td>\(key)</td></tr>"
            body += "<tr><th>event time</th><td>\(time); allowed lateness \(HTML.escape(Format.duration(t.allowedLatenessMs)))</td></tr>"
            body += "<tr><th>Redis prefix</th><td><code>\(HTML.escape(t.sink.keyPrefix))</code> (ttl \(HTML.escape(t.sink.ttlMs == 0 ? "none" : Format.duration(t.sink.ttlMs))), flush every \(HTML.escape(Format.duration(t.sink.flushIntervalMs))))</td></tr>"
            body += "<tr><th>Function</th><td><code>\(HTML.escape(info.functionName))</code></td></tr>"
            body += "<tr><th>dead letters</th><td>\(t.deadLetter.enabled ? "<code>\(HTML.escape(t.deadLetter.topic.isEmpty ? (t.source.topics.first ?? "") + ".dlq" : t.deadLetter.topic))</code>" : "counted only")</td></tr>"
            body += "</table><h3>Features</h3><table class=\"features\"><tr><th>name</th><th>kind</th><th>field</th><th>window</th><th>hop</th><th>filter</th><th>output columns</th><th>details</th></tr>"
            for f in t.features {
                let d = describe(f)
                body += "<tr class=\"feature\"><td class=\"feature-name\"><b>\(HTML.escape(f.name))</b></td><td>\(HTML.escape(d.kind))</td><td><code>\(HTML.escape(d.field))</code></td><td>\(HTML.escape(d.window))</td><td>\(HTML.escape(d.hop))</td><td><code>\(HTML.escape(f.filter?.description ?? "–"))</code></td><td><code>\(HTML.escape(f.outputNames.joined(separator: ", ")))</code></td><td>\(HTML.escape(d.details))</td></tr>"
            }
            body += "</table>"
            if !t.derived.isEmpty {
                body += "<h3>Derived columns</h3><table><tr><th>name</th><th>expression</th></tr>"
                for d in t.derived {
                    body += "<tr class=\"derived\"><td class=\"feature-name\"><b>\(HTML.escape(d.name))</b></td><td><code>\(HTML.escape(d.source))</code></td></tr>"
                }
                body += "</table>"
            }
            body += "<p><a href=\"/ui/entity?\(HTML.query([("topology", t.name)]))\">Inspect an entity</a> · <a href=\"/ui/distributions?\(HTML.query([("topology", t.name)]))\">Distributions</a></p></section>"
        }
        return HTML.page(title: "Topologies", active: "/ui/topologies", body: body)
    }

    // MARK: Entity inspector

    /// A window feature's values read at times around `T`.
    public struct WindowChart: Sendable {
        public var feature: String
        public var windowMs: Int64
        public var readAt: Int64
        /// (T in epoch ms, value) per read.
        public var points: [SVG.Point]
        public init(feature: String, windowMs: Int64, readAt: Int64, points: [SVG.Point]) {
            self.feature = feature
            self.windowMs = windowMs
            self.readAt = readAt
            self.points = points
        }
    }

    public struct Session: Sendable {
        public var name: String
        public var start: Double
        public var last: Double
        public var events: Int
        public var active: Bool
        public var gapMs: Int64
    }

    /// Everything the Entity view shows.
    public struct Entity: Sendable {
        public var topologies: [String]
        public var topology: String
        public var key: String
        /// What the user typed for T ("" for now).
        public var atText: String
        /// The read time used for charts (epoch ms).
        public var readAt: Int64
        /// nil: nothing read (no key given); false: Redis does not hold the entity.
        public var found: Bool?
        /// Output columns and their values as JSON text, in column order.
        public var values: [(name: String, json: String)] = []
        public var keyTime: Int64?
        public var charts: [WindowChart] = []
        public var lists: [(name: String, items: [String])] = []
        public var sessions: [Session] = []
        /// HGETALL: field name and what to show of its value.
        public var raw: [(field: String, value: String)] = []
        public var stateBytes: Int?
        public var error: String?

        public init(topologies: [String], topology: String, key: String, atText: String, readAt: Int64) {
            self.topologies = topologies
            self.topology = topology
            self.key = key
            self.atText = atText
            self.readAt = readAt
        }
    }

    /// The features object a read returns, as (column, JSON text) in `columns` order (then
    /// any other member); nil when it is not a JSON object.
    public static func featureValues(_ object: [UInt8], columns: [String]) -> (values: [(name: String, json: String)], raw: [String: Any])? {
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(object), options: [.fragmentsAllowed]) as? [String: Any]
        else { return nil }
        var out: [(name: String, json: String)] = []
        let order = columns + parsed.keys.sorted().filter { !columns.contains($0) && $0 != "key" && $0 != "key_time" }
        for name in order {
            guard let v = parsed[name] else { continue }
            out.append((name, jsonText(v)))
        }
        return (out, parsed)
    }

    /// A JSON value as compact text.
    public static func jsonText(_ v: Any) -> String {
        if v is NSNull { return "null" }
        if let n = v as? NSNumber, !(v is Bool) { return n.stringValue }
        if let b = v as? Bool { return b ? "true" : "false" }
        if let s = v as? String {
            return String(decoding: (try? JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
        }
        if let data = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .withoutEscapingSlashes]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(v)"
    }

    public static func entity(_ e: Entity) -> String {
        var body = "<form class=\"inline card\" method=\"get\" action=\"/ui/entity\"><label>topology <select name=\"topology\">"
        for t in e.topologies {
            body += "<option\(t == e.topology ? " selected" : "") value=\"\(HTML.escape(t))\">\(HTML.escape(t))</option>"
        }
        body += "</select></label> <label>key <input type=\"text\" name=\"key\" value=\"\(HTML.escape(e.key))\" autofocus></label> "
        body += "<label>at T <input type=\"text\" name=\"at\" placeholder=\"now (epoch ms or RFC 3339)\" value=\"\(HTML.escape(e.atText))\"></label> <button type=\"submit\">Read</button></form>"
        if let error = e.error { body += "<p class=\"error\">\(HTML.escape(error))</p>" }
        guard let found = e.found else {
            return HTML.page(title: "Entity inspector", active: "/ui/entity", body: body + "<p class=\"muted\">Type a key to read its features.</p>")
        }
        let path = "/v1/features/\(HTML.percentEscape(e.topology))/\(HTML.percentEscape(e.key))" + (e.atText.isEmpty ? "" : "?" + HTML.query([("at", e.atText)]))
        let uiJSON = "/ui/json?" + HTML.query([("topology", e.topology), ("key", e.key)] + (e.atText.isEmpty ? [] : [("at", e.atText)]))
        body += "<section class=\"card\"><h2>Entity <code class=\"entity-key\">\(HTML.escape(e.key))</code> of \(HTML.escape(e.topology))</h2>"
        body += "<p>read at \(e.atText.isEmpty ? "now (Redis's clock)" : HTML.escape(Format.time(Double(e.readAt)))) · JSON: <a class=\"json\" href=\"\(HTML.escape(path))\">\(HTML.escape(path))</a> (API, bearer token) · <a href=\"\(HTML.escape(uiJSON))\">same read from the console</a></p>"
        if !found {
            body += "<p class=\"notfound\">Redis holds no entity <code>\(HTML.escape(e.key))</code> under this topology's prefix.</p></section>"
            return HTML.page(title: "Entity inspector", active: "/ui/entity", body: body)
        }
        if let k = e.keyTime { body += "<p>key time <code>\(k)</code> (\(HTML.escape(Format.time(Double(k)))))</p>" }
        body += "<table class=\"values\"><tr><th>column</th><th>value</th></tr>"
        for (name, json) in e.values {
            body += "<tr><td class=\"feature-name\">\(HTML.escape(name))</td><td class=\"value mono\" data-column=\"\(HTML.escape(name))\">\(HTML.escape(json))</td></tr>"
        }
        body += "</table></section>"
        if !e.charts.isEmpty {
            body += "<h2>Window features over T</h2><p class=\"muted\">Each read at T from T−window to T+window: events leave the window as T moves on.</p><div class=\"grid\">"
            for c in e.charts {
                let chart = SVG.lineChart([SVG.Series(name: c.feature, points: c.points)],
                                          title: "\(c.feature) (window \(Format.duration(c.windowMs)))",
                                          markerX: Double(c.readAt), xLabel: { Format.time($0) })
                body += "<div class=\"card\">\(chart)</div>"
            }
            body += "</div>"
        }
        if !e.lists.isEmpty || !e.sessions.isEmpty {
            body += "<h2>Lists and sessions</h2><div class=\"grid\">"
            for l in e.lists {
                body += "<div class=\"card\"><h3>\(HTML.escape(l.name))</h3><ol class=\"last-n\">"
                for item in l.items { body += "<li class=\"mono\">\(HTML.escape(item))</li>" }
                body += "</ol>\(l.items.isEmpty ? "<p class=\"muted\">empty</p>" : "")</div>"
            }
            for s in e.sessions {
                body += "<div class=\"card\"><h3>\(HTML.escape(s.name))</h3><p>\(s.events) events, \(s.active ? "<span class=\"ok\">active</span>" : "closed") at T (gap \(HTML.escape(Format.duration(s.gapMs))))</p>"
                body += SVG.sessionTimeline(start: s.start, last: s.last, gapMs: Double(s.gapMs), readAt: Double(e.readAt), events: s.events, active: s.active)
                body += "</div>"
            }
            body += "</div>"
        }
        body += "<h2>Stored fields (HGETALL)</h2><table class=\"raw\"><tr><th>field</th><th>value</th></tr>"
        for (field, value) in e.raw {
            body += "<tr><td class=\"mono\">\(HTML.escape(field))</td><td class=\"mono\">\(HTML.escape(value))</td></tr>"
        }
        body += "</table>"
        if let n = e.stateBytes { body += "<p>state blob <code>_state</code>: <b class=\"state-size\">\(n)</b> bytes (\(HTML.escape(Format.bytes(n))))</p>" }
        return HTML.page(title: "Entity inspector", active: "/ui/entity", body: body)
    }

    /// What to show of each stored field: `_state`, `_fp` and parts (`_p:`) by size, `_K` with
    /// its date, fences as offsets, point columns as stored (JSON). The state size is the parts'
    /// sum for a `parts: per_partition` entity.
    public static func rawFields(_ pairs: [(field: [UInt8], value: [UInt8])]) -> (rows: [(field: String, value: String)], stateBytes: Int?) {
        var rows: [(field: String, value: String)] = []
        var state: Int?
        for (f, v) in pairs.sorted(by: { rawOrder($0.field, $1.field) }) {
            let field = String(decoding: f, as: UTF8.self)
            switch field {
            case "_state":
                state = v.count
                rows.append((field, "(binary, \(v.count) bytes)"))
            case "_fp":
                let printable = v.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
                rows.append((field, printable ? String(decoding: v, as: UTF8.self) : v.map { String(format: "%02x", $0) }.joined()))
            case "_K":
                let text = String(decoding: v, as: UTF8.self)
                rows.append((field, text + (Int64(text).map { "  (\(Format.time(Double($0))))" } ?? "")))
            default:
                if field.hasPrefix("_o:") {
                    rows.append((field + "  (fence)", String(decoding: v, as: UTF8.self)))
                } else if field.hasPrefix("_p:") {
                    // One partition's part of a `parts: per_partition` entity: a state blob.
                    state = (state ?? 0) + v.count
                    rows.append((field + "  (part)", "(binary, \(v.count) bytes)"))
                } else {
                    rows.append((field, String(decoding: v, as: UTF8.self)))
                }
            }
        }
        return (rows, state)
    }

    static func rawOrder(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let ua = a.first == UInt8(ascii: "_"), ub = b.first == UInt8(ascii: "_")
        if ua != ub { return ua }
        return a.lexicographicallyPrecedes(b)
    }

    // MARK: Distributions

    /// One feature's distribution, with the baseline's when one is loaded.
    public struct Distribution: Sendable {
        public var feature: String
        public var current: FeatureDistribution
        public var baseline: FeatureDistribution?
        public init(feature: String, current: FeatureDistribution, baseline: FeatureDistribution?) {
            self.feature = feature
            self.current = current
            self.baseline = baseline
        }
        public var psi: Double? { baseline.flatMap { PSI.compute(expected: $0, actual: current) } }
        public var flagged: Bool { (psi ?? 0) > PSI.threshold }
    }

    /// The bins drawn: the buckets from the lowest to the highest non-empty one (of either
    /// side), then the null bin when either side has nulls. (index into `bins`, label).
    public static func drawnBins(_ d: Distribution) -> [(index: Int, label: String)] {
        let cur = d.current.bins
        let base = d.baseline?.bins
        let bucketCount = FeatureBuckets.count
        let nonEmpty = (0..<bucketCount).filter { cur[$0] > 0 || (base?[$0] ?? 0) > 0 }
        var out: [(index: Int, label: String)] = []
        if let lo = nonEmpty.first, let hi = nonEmpty.last {
            for i in lo...hi { out.append((i, bucketLabel(i))) }
        }
        if cur[bucketCount] > 0 || (base?[bucketCount] ?? 0) > 0 { out.append((bucketCount, "null")) }
        return out
    }

    /// A bucket's label: `≤ upper bound` (`> 1e9` for the last).
    public static func bucketLabel(_ i: Int) -> String {
        let bounds = FeatureBuckets.upperBounds
        return i < bounds.count ? "≤" + SVG.short(bounds[i]) : ">" + SVG.short(bounds.last!)
    }

    public struct Distributions: Sendable {
        public var topologies: [String]
        public var topology: String
        public var sampledEntities: Int
        public var sampleLimit: Int
        public var takenAtMs: Int64
        public var baselineInfo: String?
        public var features: [Distribution]
        public var error: String?
        public init(topologies: [String], topology: String, sampledEntities: Int, sampleLimit: Int, takenAtMs: Int64,
                    baselineInfo: String?, features: [Distribution], error: String? = nil) {
            self.topologies = topologies
            self.topology = topology
            self.sampledEntities = sampledEntities
            self.sampleLimit = sampleLimit
            self.takenAtMs = takenAtMs
            self.baselineInfo = baselineInfo
            self.features = features
            self.error = error
        }
    }

    public static func distributions(_ d: Distributions) -> String {
        var body = "<p>"
        for t in d.topologies {
            body += t == d.topology ? "<b>\(HTML.escape(t))</b> " : "<a href=\"/ui/distributions?\(HTML.query([("topology", t)]))\">\(HTML.escape(t))</a> "
        }
        body += "</p>"
        if let error = d.error { body += "<p class=\"error\">\(HTML.escape(error))</p>" }
        body += "<p>A sample of <b class=\"sampled\">\(d.sampledEntities)</b> entities (SCAN of the prefix, at most \(d.sampleLimit)), read at \(HTML.escape(Format.time(Double(d.takenAtMs)))) through the Function, in <code>eddy drift</code>'s buckets. "
        body += d.baselineInfo.map { "Baseline: \(HTML.escape($0)); PSI over \(SVG.short(PSI.threshold)) is flagged." } ?? "No baseline loaded (<code>--drift-baseline FILE</code>, saved by <code>eddy drift --save-baseline</code>)."
        body += "</p>"
        if d.baselineInfo != nil {
            body += "<table class=\"psi\"><tr><th>feature</th><th>PSI</th><th>baseline values</th><th>current values</th><th>verdict</th></tr>"
            for f in d.features {
                let psi = f.psi.map { String(format: "%.4f", $0) } ?? "n/a"
                let verdict = f.psi == nil ? "no data" : f.flagged ? "<span class=\"flag\">DRIFT</span>" : (f.psi! > 0.1 ? "moderate" : "<span class=\"ok\">stable</span>")
                body += "<tr class=\"\(f.flagged ? "drift" : "")\"><td>\(HTML.escape(f.feature))</td><td class=\"mono\">\(psi)</td><td>\(f.baseline?.total ?? 0)</td><td>\(f.current.total)</td><td>\(verdict)</td></tr>"
            }
            body += "</table>"
        }
        body += "<div class=\"grid\">"
        for f in d.features {
            let bins = drawnBins(f)
            let cur = f.current.bins, base = f.baseline?.bins
            var title = f.feature
            if let psi = f.psi { title += String(format: "  PSI %.4f", psi) + (f.flagged ? "  DRIFT" : "") }
            body += "<div class=\"card dist\" data-feature=\"\(HTML.escape(f.feature))\"><h3>\(HTML.escape(f.feature))\(f.flagged ? " <span class=\"flag\">PSI &gt; \(SVG.short(PSI.threshold))</span>" : "")</h3>"
            if bins.isEmpty {
                body += "<p class=\"muted\">no values sampled</p>"
            } else {
                body += SVG.histogram(current: bins.map { cur[$0.index] }, baseline: base.map { b in bins.map { b[$0.index] } },
                                      labels: bins.map(\.label), title: title)
            }
            body += "</div>"
        }
        body += "</div>"
        return HTML.page(title: "Distributions", active: "/ui/distributions", body: body)
    }

    // MARK: Workers

    public static func workers(_ summaries: [WorkerHistory.Summary], interval: Double) -> String {
        var body = ""
        if summaries.isEmpty {
            body += "<p class=\"muted\">No worker is watched: start <code>eddy serve --worker-metrics URL...</code> with each worker's <code>/metrics</code> URL (<code>eddy run --http HOST:PORT</code>).</p>"
        } else {
            body += "<p>Scraped every \(HTML.escape(SVG.short(interval))) s; the last 15 minutes (x: seconds relative to now).</p>"
        }
        let ago: (Double) -> String = { $0 >= -0.5 ? "now" : "\(Int((-$0).rounded())) s ago" }
        for s in summaries {
            body += "<section class=\"card worker\"><h2><code>\(HTML.escape(s.url))</code></h2><p>\(s.scrapes) scrapes"
            if let e = s.lastError { body += " · <span class=\"flag\">last scrape failed: \(HTML.escape(e))</span>" }
            body += "</p><div class=\"grid\">"
            body += "<div class=\"card\">\(SVG.lineChart(s.eventsPerSecond, title: "events/s", xLabel: ago))</div>"
            body += "<div class=\"card lag\">\(SVG.lineChart(s.lagByPartition, title: "consumer lag per partition (messages)", xLabel: ago))</div>"
            body += "<div class=\"card\">\(SVG.lineChart(s.freshness, title: "Kafka freshness (ms), events between scrapes", xLabel: ago, yUnit: "ms"))</div>"
            body += "<div class=\"card\">\(SVG.lineChart(s.flushLatency, title: "flush latency (ms), flushes between scrapes", xLabel: ago, yUnit: "ms"))</div>"
            body += "<div class=\"card\">\(SVG.lineChart(s.deadLettersByReason, title: "dead letters by reason (total)", xLabel: ago))</div>"
            body += "<div class=\"card\">\(SVG.lineChart(s.redisErrors, title: "Redis errors and retries (total)", xLabel: ago))</div>"
            body += "</div>"
            if !s.latestCounts.isEmpty {
                body += "<table class=\"counts\"><tr><th>counter</th><th>now</th></tr>"
                for (name, v) in s.latestCounts { body += "<tr><td>\(HTML.escape(name))</td><td class=\"mono\">\(HTML.escape(SVG.short(v)))</td></tr>" }
                body += "</table>"
            }
            body += "</section>"
        }
        return HTML.page(title: "Workers", active: "/ui/workers", body: body)
    }

    // MARK: Login

    public static func login(error: String?) -> String {
        var body = ""
        if let error { body += "<p class=\"error\">\(HTML.escape(error))</p>" }
        body += "<form class=\"card\" method=\"post\" action=\"/ui/login\"><p>This server needs a bearer token (<code>--auth-token-file</code>). Enter one to open the console; it is kept in an HttpOnly cookie for <code>/ui</code>.</p>"
        body += "<label>token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" autofocus></label> <button type=\"submit\">Open</button></form>"
        return HTML.page(title: "Sign in", active: "", body: body)
    }
}

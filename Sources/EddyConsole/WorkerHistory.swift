import Foundation

/// One sample of a Prometheus text scrape.
public struct MetricSample: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var value: Double
}

/// Prometheus text format (0.0.4) → samples; comments and malformed lines are skipped.
public enum PrometheusTextParser {
    public static func parse(_ text: String) -> [MetricSample] {
        var out: [MetricSample] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var name = ""
            var labels: [String: String] = [:]
            var rest: Substring
            if let brace = line.firstIndex(of: "{") {
                name = String(line[..<brace])
                guard let (parsed, after) = parseLabels(line[line.index(after: brace)...]) else { continue }
                labels = parsed
                rest = after
            } else {
                guard let space = line.firstIndex(of: " ") else { continue }
                name = String(line[..<space])
                rest = line[space...]
            }
            let fields = rest.split(separator: " ")
            guard let first = fields.first, let value = parseValue(first) else { continue }
            out.append(MetricSample(name: name, labels: labels, value: value))
        }
        return out
    }

    static func parseValue(_ s: Substring) -> Double? {
        switch s {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(s)
        }
    }

    /// `a="x",b="y"} rest` → labels and what follows the brace.
    static func parseLabels(_ s: Substring) -> ([String: String], Substring)? {
        var labels: [String: String] = [:]
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "}" { return (labels, s[s.index(after: i)...]) }
            if s[i] == "," || s[i] == " " { i = s.index(after: i); continue }
            guard let eq = s[i...].firstIndex(of: "=") else { return nil }
            let key = String(s[i..<eq])
            var j = s.index(after: eq)
            guard j < s.endIndex, s[j] == "\"" else { return nil }
            j = s.index(after: j)
            var value = ""
            while j < s.endIndex, s[j] != "\"" {
                if s[j] == "\\", s.index(after: j) < s.endIndex {
                    j = s.index(after: j)
                    value.append(s[j] == "n" ? "\n" : s[j])
                } else {
                    value.append(s[j])
                }
                j = s.index(after: j)
            }
            guard j < s.endIndex else { return nil }
            labels[key] = value
            i = s.index(after: j)
        }
        return nil
    }
}

/// One scrape of one worker: when (seconds since 1970), and its samples (nil: it failed).
public struct Scrape: Sendable {
    public var time: Double
    public var samples: [MetricSample]?
    public var error: String?

    public init(time: Double, samples: [MetricSample]?, error: String? = nil) {
        self.time = time
        self.samples = samples
        self.error = error
    }

    func sum(_ name: String, where match: ([String: String]) -> Bool = { _ in true }) -> Double? {
        guard let samples else { return nil }
        var total = 0.0, found = false
        for s in samples where s.name == name && match(s.labels) {
            total += s.value
            found = true
        }
        return found ? total : nil
    }

    /// A histogram's cumulative buckets (upper bound, count), ascending, summed over label sets.
    func buckets(_ name: String) -> [(le: Double, count: Double)] {
        guard let samples else { return [] }
        var byBound: [Double: Double] = [:]
        for s in samples where s.name == name + "_bucket" {
            guard let le = s.labels["le"].flatMap({ PrometheusTextParser.parseValue(Substring($0)) }) else { continue }
            byBound[le, default: 0] += s.value
        }
        return byBound.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

/// The quantile of a cumulative Prometheus histogram, interpolated linearly inside its
/// bucket (as PromQL's `histogram_quantile`); nil when it holds no observation.
public func histogramQuantile(_ q: Double, _ buckets: [(le: Double, count: Double)]) -> Double? {
    guard let total = buckets.last?.count, total > 0 else { return nil }
    let rank = q * total
    var previousBound = 0.0, previousCount = 0.0
    for (le, count) in buckets {
        if count >= rank {
            if le.isInfinite { return previousBound }
            let inBucket = count - previousCount
            if inBucket <= 0 { return le }
            return previousBound + (le - previousBound) * (rank - previousCount) / inBucket
        }
        previousBound = le.isInfinite ? previousBound : le
        previousCount = count
    }
    return previousBound
}

/// The last 15 minutes of scrapes of each worker's `/metrics`, and the series the Workers
/// view draws from them. Thread-safe.
public final class WorkerHistory: @unchecked Sendable {
    public let urls: [String]
    public let retention: Double
    private let lock = NSLock()
    private var scrapes: [String: [Scrape]] = [:]

    public init(urls: [String], retention: Double = 15 * 60) {
        self.urls = urls
        self.retention = retention
    }

    public func record(_ url: String, _ scrape: Scrape) {
        lock.lock()
        defer { lock.unlock() }
        var list = scrapes[url, default: []]
        list.append(scrape)
        let horizon = scrape.time - retention
        if let firstKept = list.firstIndex(where: { $0.time >= horizon }), firstKept > 0 { list.removeFirst(firstKept) }
        scrapes[url] = list
    }

    public func history(_ url: String) -> [Scrape] {
        lock.lock()
        defer { lock.unlock() }
        return scrapes[url] ?? []
    }

    /// What the Workers view shows for one worker.
    public struct Summary: Sendable {
        public var url: String
        public var scrapes: Int
        public var lastError: String?
        public var eventsPerSecond: [SVG.Series]
        public var lagByPartition: [SVG.Series]
        public var freshness: [SVG.Series]
        public var flushLatency: [SVG.Series]
        public var deadLettersByReason: [SVG.Series]
        public var redisErrors: [SVG.Series]
        /// The latest value of each dead-letter reason and of the Redis error counters.
        public var latestCounts: [(String, Double)]
    }

    /// The series of `url`'s history, x in seconds relative to `now` (negative: ago).
    public func summary(_ url: String, now: Double) -> Summary {
        Self.summarize(url: url, history(url), now: now)
    }

    public static func summarize(url: String, _ all: [Scrape], now: Double) -> Summary {
        let ok = all.filter { $0.samples != nil }
        func x(_ s: Scrape) -> Double { s.time - now }
        // events/s: the rate of events consumed between consecutive scrapes.
        var rate: [SVG.Point] = []
        for (a, b) in zip(ok, ok.dropFirst()) where b.time > a.time {
            if let ca = a.sum("eddy_worker_events_consumed_total"), let cb = b.sum("eddy_worker_events_consumed_total") {
                rate.append(.init(x(b), max(cb - ca, 0) / (b.time - a.time)))
            }
        }
        // Lag per partition.
        var lag: [String: [SVG.Point]] = [:]
        for s in ok {
            for m in s.samples! where m.name == "eddy_worker_consumer_lag" {
                let name = "\(m.labels["topic"] ?? "?")/\(m.labels["partition"] ?? "?")"
                lag[name, default: []].append(.init(x(s), m.value))
            }
        }
        let lagSeries = lag.sorted { partitionOrder($0.key, $1.key) }.map { SVG.Series(name: $0.key, points: $0.value) }
        // Quantiles of the observations between consecutive scrapes (none: no point; the
        // first scrape: everything observed before it).
        func quantiles(_ metric: String, scale: Double) -> [SVG.Series] {
            var p50: [SVG.Point] = [], p99: [SVG.Point] = []
            var previous: [(le: Double, count: Double)]?
            for s in ok {
                let cumulative = s.buckets(metric)
                var window = cumulative
                if let previous, previous.count == cumulative.count {
                    window = zip(cumulative, previous).map { ($0.le, $0.count - $1.count) }
                }
                previous = cumulative
                if let a = histogramQuantile(0.5, window) { p50.append(.init(x(s), a * scale)) }
                if let b = histogramQuantile(0.99, window) { p99.append(.init(x(s), b * scale)) }
            }
            return [SVG.Series(name: "p50", points: p50), SVG.Series(name: "p99", points: p99)]
        }
        // Dead letters by reason: invalid events by reason (summed over topics), late events.
        var reasons: [String: [SVG.Point]] = [:]
        for s in ok {
            var perReason: [String: Double] = [:]
            for m in s.samples! where m.name == "eddy_worker_events_invalid_total" {
                perReason[m.labels["reason"] ?? "?", default: 0] += m.value
            }
            if let late = s.sum("eddy_worker_events_late_total") { perReason["late"] = late }
            for (r, v) in perReason { reasons[r, default: []].append(.init(x(s), v)) }
        }
        // Reasons that ever counted anything (else one flat line for them all).
        var reasonSeries = reasons.sorted { $0.key < $1.key }.filter { $0.value.contains { $0.y > 0 } }
            .map { SVG.Series(name: $0.key, points: $0.value) }
        if reasonSeries.isEmpty, let any = reasons.values.first {
            reasonSeries = [SVG.Series(name: "all reasons", points: any.map { SVG.Point($0.x, 0) })]
        }
        var redis: [SVG.Point] = [], retries: [SVG.Point] = []
        for s in ok {
            if let v = s.sum("eddy_worker_redis_errors_total") { redis.append(.init(x(s), v)) }
            if let v = s.sum("eddy_worker_redis_retries_total") { retries.append(.init(x(s), v)) }
        }
        var latest: [(String, Double)] = []
        if let last = ok.last {
            for r in reasonSeries where r.name != "all reasons" { latest.append(("dead letters: \(r.name)", r.points.last?.y ?? 0)) }
            if let v = last.sum("eddy_worker_dead_letters_total") { latest.append(("dead-letter records sent", v)) }
            if let v = last.sum("eddy_worker_redis_errors_total") { latest.append(("Redis errors", v)) }
            if let v = last.sum("eddy_worker_redis_retries_total") { latest.append(("Redis retries", v)) }
        }
        return Summary(
            url: url, scrapes: all.count, lastError: all.last?.error,
            eventsPerSecond: [SVG.Series(name: "events/s", points: rate)],
            lagByPartition: lagSeries,
            freshness: quantiles("eddy_worker_kafka_freshness_seconds", scale: 1000),
            flushLatency: quantiles("eddy_worker_flush_duration_seconds", scale: 1000),
            deadLettersByReason: reasonSeries,
            redisErrors: [SVG.Series(name: "errors", points: redis), SVG.Series(name: "retries", points: retries)],
            latestCounts: latest)
    }

    /// `topic/3` before `topic/12`.
    static func partitionOrder(_ a: String, _ b: String) -> Bool {
        let pa = a.split(separator: "/"), pb = b.split(separator: "/")
        if pa.first != pb.first { return a < b }
        return (pa.last.flatMap { Int($0) } ?? 0) < (pb.last.flatMap { Int($0) } ?? 0)
    }
}

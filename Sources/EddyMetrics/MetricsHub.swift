import CoreMetrics
import Foundation
import Prometheus

/// Something `/metrics` reads when it is scraped.
public protocol MetricsCollector: Sendable {
    /// Before the registry is written: sets its counters and gauges from
    /// the source (e.g. the worker's atomic counters).
    func update()
    /// After: appends what the registry cannot hold (histograms whose
    /// buckets were counted elsewhere) as Prometheus text.
    func emit(into buffer: inout [UInt8])
}

extension MetricsCollector {
    public func update() {}
    public func emit(into buffer: inout [UInt8]) {}
}

/// The metrics of one process: a swift-prometheus registry (which
/// swift-metrics writes into through `factory`) plus collectors that read
/// their sources on scrape, so no hot path writes a metric.
public final class MetricsHub: @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry
    /// A swift-metrics factory writing into `registry` (for `Counter(label:dimensions:factory:)`).
    public let factory: PrometheusMetricsFactory
    private let lock = NSLock()
    private var collectors: [any MetricsCollector] = []

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = MetricsHub.latencyBuckets.map { .nanoseconds(Int64($0 * 1e9)) }
        self.factory = factory
    }

    /// Request latency bucket bounds, seconds: 100 µs to 10 s.
    public static let latencyBuckets: [Double] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    public func add(_ collector: any MetricsCollector) {
        lock.lock()
        collectors.append(collector)
        lock.unlock()
    }

    /// The Prometheus text exposition (format 0.0.4) of everything.
    /// Scrapes are serialized: collectors set registry values before it is written.
    public func scrape() -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        for c in collectors { c.update() }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 << 10)
        registry.emit(into: &buffer)
        for c in collectors { c.emit(into: &buffer) }
        return buffer
    }

    /// The content type of `scrape()`.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// A counter whose value lives elsewhere (an atomic), copied in on scrape.
/// Only `MetricsHub.scrape` (serialized) calls `set`.
struct MirroredCounter: Sendable {
    let counter: Prometheus.Counter

    init(_ registry: PrometheusCollectorRegistry, _ name: String, _ labels: [(String, String)] = [], help: String) {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        counter = labels.isEmpty
            ? registry.makeCounter(descriptor: descriptor)
            : registry.makeCounter(descriptor: descriptor, labels: labels)
    }

    func set(_ value: Int) {
        counter.reset()
        counter.increment(by: Int64(max(value, 0)))
    }
}

extension PrometheusCollectorRegistry {
    /// A gauge with help text (and labels).
    func gauge(_ name: String, _ labels: [(String, String)] = [], help: String) -> Prometheus.Gauge {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        return labels.isEmpty ? makeGauge(descriptor: descriptor) : makeGauge(descriptor: descriptor, labels: labels)
    }
}

/// Writes Prometheus text for metrics kept outside the registry.
public enum PrometheusText {
    public static func help(_ buffer: inout [UInt8], _ name: String, _ help: String, type: String) {
        buffer.append(contentsOf: "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n".utf8)
    }

    /// `a="x",b="y"` with values escaped.
    public static func labels(_ labels: [(String, String)]) -> String {
        labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
    }

    public static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// A number as Prometheus writes it (`+Inf`, integers without a fraction).
    public static func number(_ v: Double) -> String {
        if v == .infinity { return "+Inf" }
        if v == -.infinity { return "-Inf" }
        if v.isNaN { return "NaN" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// One histogram series: cumulative `_bucket`s for `bounds`, `+Inf`, `_sum`, `_count`.
    /// `cumulative[i]` counts observations `<= bounds[i]`.
    public static func histogram(
        _ buffer: inout [UInt8], name: String, labels: [(String, String)], bounds: [Double], cumulative: [Int],
        count: Int, sum: Double
    ) {
        let base = Self.labels(labels)
        let sep = base.isEmpty ? "" : ","
        for (bound, n) in zip(bounds, cumulative) {
            buffer.append(contentsOf: "\(name)_bucket{\(base)\(sep)le=\"\(number(bound))\"} \(n)\n".utf8)
        }
        buffer.append(contentsOf: "\(name)_bucket{\(base)\(sep)le=\"+Inf\"} \(count)\n".utf8)
        let braces = base.isEmpty ? "" : "{\(base)}"
        buffer.append(contentsOf: "\(name)_sum\(braces) \(number(sum))\n".utf8)
        buffer.append(contentsOf: "\(name)_count\(braces) \(count)\n".utf8)
    }
}

import EddyMetrics
import EddyMonitor

/// Exports a `FeatureMonitor` on scrape.
public struct FeatureMonitorCollector: MetricsCollector {
    public let monitor: FeatureMonitor

    public init(_ monitor: FeatureMonitor) { self.monitor = monitor }

    public func emit(into buffer: inout [UInt8]) {
        let topology = monitor.topology.name
        let bounds = FeatureBuckets.upperBounds
        PrometheusText.help(&buffer, "eddy_feature_value",
                            "Values the worker writes per numeric feature column, read at the entity's key time (sampled per flush).",
                            type: "histogram")
        var nullLines: [String] = []
        for (m, column) in monitor.columns.enumerated() {
            let d = monitor.distribution(m)
            var cumulative = Array(d.counts.prefix(bounds.count))
            for i in cumulative.indices.dropFirst() { cumulative[i] += cumulative[i - 1] }
            let labels = [("topology", topology), ("feature", column.name)]
            PrometheusText.histogram(&buffer, name: "eddy_feature_value", labels: labels, bounds: bounds,
                                     cumulative: cumulative, count: d.counts.reduce(0, +), sum: d.sum)
            nullLines.append("eddy_feature_value_null_total{\(PrometheusText.labels(labels))} \(d.nulls)\n")
        }
        PrometheusText.help(&buffer, "eddy_feature_value_null_total",
                            "Written values that were null (an empty min/max/avg window) or not finite.", type: "counter")
        for line in nullLines { buffer.append(contentsOf: line.utf8) }
        PrometheusText.help(&buffer, "eddy_feature_entities_observed_total", "Written entities the feature monitor read.",
                            type: "counter")
        buffer.append(contentsOf:
            "eddy_feature_entities_observed_total{topology=\"\(PrometheusText.escape(topology))\"} \(monitor.entitiesObserved.load(ordering: .relaxed))\n".utf8)
    }
}

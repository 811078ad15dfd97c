import EddyCore
import EddyTopology
import Testing

/// Issue 16: the new kinds' options, each problem with file:line:column and a fix.
@Suite struct KindOptionTests {
    let base = """
        name: t
        source: {brokers: "b:9092", topic: events}
        key: user_id
        time: {field: ts, unit: ms}
        sink: {redis: "redis://127.0.0.1:6379"}
        features:

        """

    func errors(_ features: String) -> [Diagnostic] {
        do {
            _ = try TopologyLoader(environment: [:]).parse(base + features, file: "t.yaml")
            return []
        } catch {
            return error.diagnostics
        }
    }

    func load(_ features: String) throws -> Topology {
        try TopologyLoader(environment: [:]).parse(base + features, file: "t.yaml")
    }

    @Test func everyKindLoadsWithItsDefaults() throws {
        let t = try load("""
              - {name: d, kind: distinct_count, field: m}
              - {name: p, kind: percentile, field: x, window: 1h}
              - {name: f, kind: first, field: m}
              - {name: l, kind: last, field: m, window: 2h, hop: 10m}
              - {name: v, kind: variance, field: x}
              - {name: s, kind: stddev, field: x}
              - {name: c, kind: count_by, field: m}
              - {name: since, kind: time_since, where: m == "x"}
              - {name: n, kind: count}
              - {name: a, kind: avg, field: x}
            """)
        #expect(t.features[0].kind == .tiled(.distinctCount(precision: 12, exactLimit: 64), field: FieldPath(["m"]), windowMs: 0, hopMs: 0))
        #expect(t.features[1].kind == .tiled(.percentile(quantiles: [0.5, 0.9, 0.99], relativeAccuracy: 0.01), field: FieldPath(["x"]),
                                             windowMs: 3_600_000, hopMs: 300_000))
        #expect(t.features[1].outputNames == ["p_p50", "p_p90", "p_p99"])
        #expect(t.features[3].kind == .tiled(.last, field: FieldPath(["m"]), windowMs: 7_200_000, hopMs: 600_000))
        #expect(t.features[6].kind == .tiled(.countBy(top: 10, maxValues: 64), field: FieldPath(["m"]), windowMs: 0, hopMs: 0))
        #expect(t.features[7].kind == .timeSince && t.features[7].filter != nil)
        #expect(t.features[8].kind == .window(.count, field: nil, windowMs: 0, hopMs: 0))
        #expect(t.features[8].kind.isLifetime && !t.features[1].kind.isLifetime)
    }

    @Test func precisionOutOfRange() {
        let d = errors("  - {name: d, kind: distinct_count, field: m, precision: 17}")
        #expect(d.count == 1)
        #expect(d[0].description.hasPrefix("t.yaml:7:58: error: precision must be a whole number from 4 to 16, not '17'"))
        #expect(d[0].fix?.contains("2^p registers") == true)
        #expect(errors("  - {name: d, kind: distinct_count, field: m, precision: 3}").count == 1)
        #expect(errors("  - {name: d, kind: distinct_count, field: m, precision: 4, exact_limit: 0}").isEmpty)
        #expect(errors("  - {name: d, kind: distinct_count, field: m, exact_limit: -1}")[0].message.hasPrefix("exact_limit must"))
    }

    @Test func quantilesMustBeStrictlyBetweenZeroAndOne() {
        let d = errors("  - name: p\n    kind: percentile\n    field: x\n    quantiles: [0.5, 1, 0, 0.5, abc]")
        #expect(d.map(\.line) == [10, 10, 10, 10])
        #expect(d.map(\.column) == [22, 25, 28, 33])
        #expect(d[0].message == "a quantile must be a number strictly between 0 and 1, not '1'")
        #expect(d[0].fix?.contains("0.99 for p99") == true)
        #expect(d[2].message == "quantile 0.5 appears twice")
        #expect(errors("  - {name: p, kind: percentile, field: x, quantiles: []}")[0].message == "quantiles is empty")
        #expect(errors("  - {name: p, kind: percentile, field: x, quantiles: 0.5}")[0].message.hasPrefix("quantiles must be a list"))
    }

    @Test func relativeAccuracyRange() {
        let d = errors("  - {name: p, kind: percentile, field: x, relative_accuracy: 0}")
        #expect(d.count == 1)
        #expect(d[0].description.hasPrefix("t.yaml:7:62: error: relative_accuracy must be a number from 0.0001 to 0.5, not '0'"))
        #expect(errors("  - {name: p, kind: percentile, field: x, relative_accuracy: 0.6}").count == 1)
        #expect(errors("  - {name: p, kind: percentile, field: x, relative_accuracy: 0.02}").isEmpty)
    }

    @Test func topAndMaxValuesRanges() {
        let d = errors("  - name: c\n    kind: count_by\n    field: m\n    top: 0\n    max_values: 5000")
        #expect(d.map(\.line) == [10, 11])
        #expect(d[0].message == "top must be a whole number from 1 to 1000, not '0'")
        #expect(d[1].message == "max_values must be a whole number from 1 to 4096, not '5000'")
        #expect(d[1].fix?.contains("__other__") == true)
    }

    @Test func unknownAndMisplacedOptions() {
        let d = errors("  - {name: c, kind: count_by, field: m, maxvalues: 3}")
        #expect(d.count == 1)
        #expect(d[0].description.hasPrefix("t.yaml:7:41: error: unknown key 'maxvalues' in a feature"))
        #expect(d[0].fix == "did you mean 'max_values'?")
        let m = errors("  - {name: p, kind: percentile, field: x, precision: 10}")
        #expect(m.count == 1)
        #expect(m[0].message == "'precision' does not apply to a percentile feature")
        #expect(m[0].fix?.contains("quantiles, relative_accuracy") == true)
        let t = errors("  - {name: t, kind: time_since, field: x, window: 1h}")
        #expect(t.map(\.message) == ["'field' does not apply to a time_since feature", "'window' does not apply to a time_since feature"])
        #expect(t[0].fix?.contains("only name, kind and where") == true)
        let h = errors("  - {name: l, kind: last, field: x, hop: 5m}")
        #expect(h.map(\.message) == ["hop without a window"])
        #expect(errors("  - {name: v, kind: variance}")[0].message == "variance feature 'v' needs a field")
    }
}

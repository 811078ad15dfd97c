import EddyConsole
import EddyCore
import EddyMonitor
import EddyTopology
import Foundation
import Testing

@Suite("Console renderers")
struct ConsoleRenderTests {
    static func clickstream() throws -> Topology {
        try TopologyLoader(environment: [:]).parse(EmbeddedTopologies.clickstream, file: "clickstream.yaml")
    }

    @Test("escaping: HTML text and attributes, percent-escaped URL parts, form decoding")
    func escaping() {
        #expect(HTML.escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        #expect(HTML.percentEscape("a b/<c>?&é") == "a%20b%2F%3Cc%3E%3F%26%C3%A9")
        #expect(HTML.percentEscape("u-1.x_~") == "u-1.x_~")
        #expect(HTML.formDecode("key=%3Cscript%3E+x&at=") == ["key": "<script> x", "at": ""])
    }

    @Test("a key holding HTML is rendered escaped everywhere: text, attributes, links")
    func plantedKeyIsEscaped() throws {
        let key = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>"
        var e = Views.Entity(topologies: ["clickstream"], topology: "clickstream", key: key, atText: "", readAt: 1_767_225_600_000)
        e.found = true
        e.values = [("last_items", "[\"<b>i1</b>\"]"), ("clicks_1h", "3")]
        e.lists = [("last_items", ["<b>i1</b>"])]
        e.raw = [("_K", "1767225600000"), ("last_items", "[\"<b>i1</b>\"]")]
        e.stateBytes = 212
        let page = Views.entity(e)
        #expect(!page.contains("<script>"))
        #expect(!page.contains("<img"))
        #expect(!page.contains("<b>i1"))
        #expect(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"))
        // The JSON link carries the key percent-escaped, as one path segment.
        #expect(page.contains("/v1/features/clickstream/%3Cscript%3Ealert%28%27x%27%29%3C%2Fscript%3E%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"))
        // Not found: still escaped.
        e.found = false
        let missing = Views.entity(e)
        #expect(!missing.contains("<script>") && missing.contains("&lt;script&gt;"))
        // The error text too.
        e.error = "<script>x</script>"
        #expect(!Views.entity(e).contains("<script>"))
    }

    @Test("the Topologies view names every feature with its kind, window, hop, filter and columns")
    func topologiesView() throws {
        let t = try Self.clickstream()
        let page = Views.topologies([.init(topology: t, functionName: "eddy_clickstream_features")])
        for f in t.features { #expect(page.contains(">\(f.name)<"), "\(f.name)") }
        #expect(page.contains("eddy_clickstream_features"))
        #expect(page.contains("<code>clickstream:</code>"))
        #expect(page.contains("event == &quot;click&quot;"))
        #expect(page.contains("session_events"))
        #expect(page.contains("<td>1h</td><td>5m</td>"))
    }

    @Test("every example topology renders: all kinds, derived columns, message keys")
    func allExampleTopologies() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Topologies")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 4)
        for file in files {
            let t = try TopologyLoader(environment: [:]).load(path: dir.appendingPathComponent(file).path)
            let page = Views.topologies([.init(topology: t, functionName: "f")])
            for c in t.outputColumns { #expect(page.contains(c), "\(file): \(c)") }
            for d in t.derived { #expect(page.contains(HTML.escape(d.source)), "\(file): \(d.name)") }
        }
        #expect(Format.duration(86_400_000) == "24h" && Format.duration(7 * 86_400_000) == "7d" && Format.duration(90 * 60_000) == "1h30m")
    }

    @Test("a per-partition entity's parts show by size, their sum as the state size; fences as offsets")
    func partsInRawFields() {
        let blob: [UInt8] = [0xFF, 0x00, 0x3C, 0x7F, 0x01]
        let (rows, state) = Views.rawFields([
            (Array("_p:clickstream:3".utf8), blob), (Array("_p:clickstream:0".utf8), blob + blob),
            (Array("_o:clickstream:3".utf8), Array("812".utf8)), (Array("_fp".utf8), Array("abc".utf8)),
        ])
        #expect(state == 15)
        #expect(rows.contains { $0.field == "_p:clickstream:0  (part)" && $0.value == "(binary, 10 bytes)" })
        #expect(rows.contains { $0.field == "_p:clickstream:3  (part)" && $0.value == "(binary, 5 bytes)" })
        #expect(rows.contains { $0.field == "_o:clickstream:3  (fence)" && $0.value == "812" })
        #expect(!rows.contains { $0.value.contains("\u{FF}") || $0.value.contains("<") })
    }

    static func distribution(_ values: [Double?]) -> FeatureDistribution {
        var d = FeatureDistribution()
        for v in values { d.add(v) }
        return d
    }

    @Test("a histogram draws one bar per bucket from the lowest to the highest non-empty one, plus nulls")
    func histogramBars() {
        // 0 → bucket "≤0"; 1 → "≤1"; 3 → "≤5"; 40 → "≤50": from ≤0 to ≤50 are 0, 0.01, 0.02, 0.05,
        // 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50: 13 buckets, plus the null bin.
        let d = Views.Distribution(feature: "clicks_1h", current: Self.distribution([0, 1, 3, 40, nil]), baseline: nil)
        let bins = Views.drawnBins(d)
        #expect(bins.count == 14)
        #expect(bins.first?.label == "≤0" && bins.last?.label == "null")
        let page = Views.distributions(.init(topologies: ["clickstream"], topology: "clickstream", sampledEntities: 5,
                                             sampleLimit: 1000, takenAtMs: 0, baselineInfo: nil, features: [d]))
        #expect(page.components(separatedBy: "class=\"bar cur\"").count - 1 == 14)
        #expect(page.components(separatedBy: "class=\"bar base\"").count - 1 == 0)
        let counts = page.components(separatedBy: "class=\"bar cur\" ").dropFirst().compactMap { part -> Int? in
            guard let r = part.range(of: "data-count=\"") else { return nil }
            return Int(part[r.upperBound...].prefix { $0.isNumber })
        }
        #expect(counts.reduce(0, +) == 5)
        // No values at all: no histogram.
        let empty = Views.Distribution(feature: "x", current: FeatureDistribution(), baseline: nil)
        #expect(Views.drawnBins(empty).isEmpty)
    }

    @Test("PSI beside the baseline: shifted features are flagged over 0.2, unchanged ones are not")
    func psiFlag() {
        let baseline = Self.distribution(Array(repeating: 1.0, count: 50) + Array(repeating: 10.0, count: 50))
        let same = Self.distribution(Array(repeating: 1.0, count: 500) + Array(repeating: 10.0, count: 500))
        let shifted = Self.distribution(Array(repeating: 1.0, count: 25) + Array(repeating: 10.0, count: 75))
        let stable = Views.Distribution(feature: "stable_f", current: same, baseline: baseline)
        let drifted = Views.Distribution(feature: "drifted_f", current: shifted, baseline: baseline)
        #expect(stable.psi! < 1e-9 && !stable.flagged)
        #expect(abs(drifted.psi! - PSI.compute(expected: baseline, actual: shifted)!) < 1e-12)
        #expect(drifted.psi! > 0.2 && drifted.flagged)
        let page = Views.distributions(.init(topologies: ["t"], topology: "t", sampledEntities: 100, sampleLimit: 1000,
                                             takenAtMs: 0, baselineInfo: "100 entities", features: [stable, drifted]))
        #expect(page.contains("<tr class=\"drift\"><td>drifted_f</td>"))
        #expect(page.contains("<tr class=\"\"><td>stable_f</td>"))
        #expect(page.contains(String(format: "%.4f", drifted.psi!)))
        // Baseline bars beside the current ones, one per drawn bin (≤1 to ≤10: 1, 2, 5, 10).
        #expect(page.components(separatedBy: "class=\"bar base\"").count - 1 == 8)
    }

    @Test("Prometheus text: labels, escapes, +Inf; histogram quantiles")
    func prometheus() {
        let text = """
            # HELP x y
            eddy_worker_consumer_lag{topic="clickstream",partition="3"} 12
            eddy_worker_events_invalid_total{topic="a",reason="not_json"} 2
            odd{l="a\\"b,c"} 1.5e3
            h_bucket{le="0.1"} 5
            h_bucket{le="1"} 10
            h_bucket{le="+Inf"} 10
            """
        let s = PrometheusTextParser.parse(text)
        #expect(s.count == 6)
        #expect(s[0].labels == ["topic": "clickstream", "partition": "3"] && s[0].value == 12)
        #expect(s[2].labels["l"] == "a\"b,c" && s[2].value == 1500)
        #expect(s[5].value == .infinity || s[5].labels["le"] == "+Inf")
        let buckets: [(le: Double, count: Double)] = [(0.1, 5), (1, 10), (.infinity, 10)]
        #expect(abs(histogramQuantile(0.5, buckets)! - 0.1) < 1e-12)
        #expect(abs(histogramQuantile(0.75, buckets)! - 0.55) < 1e-12)
        #expect(histogramQuantile(0.5, [(1, 0), (.infinity, 0)]) == nil)
    }

    @Test("worker history: events/s from counter deltas, a lag series per partition, 15 minutes kept")
    func workerSeries() {
        let h = WorkerHistory(urls: ["http://w:1/metrics"], retention: 900)
        func scrape(_ t: Double, consumed: Double, lag: Double) -> Scrape {
            Scrape(time: t, samples: PrometheusTextParser.parse("""
                eddy_worker_events_consumed_total{topic="clickstream"} \(consumed)
                eddy_worker_consumer_lag{topic="clickstream",partition="0"} \(lag)
                eddy_worker_consumer_lag{topic="clickstream",partition="10"} 1
                eddy_worker_consumer_lag{topic="clickstream",partition="2"} 2
                eddy_worker_events_invalid_total{topic="clickstream",reason="not_json"} 3
                eddy_worker_events_late_total{topic="clickstream"} 4
                eddy_worker_redis_errors_total 0
                eddy_worker_flush_duration_seconds_bucket{le="0.001"} \(consumed / 10)
                eddy_worker_flush_duration_seconds_bucket{le="+Inf"} \(consumed / 10)
                """))
        }
        h.record("http://w:1/metrics", scrape(1000, consumed: 100, lag: 50))
        h.record("http://w:1/metrics", scrape(1005, consumed: 600, lag: 5))
        h.record("http://w:1/metrics", Scrape(time: 1010, samples: nil, error: "refused"))
        h.record("http://w:1/metrics", scrape(1015, consumed: 1600, lag: 0))
        let s = h.summary("http://w:1/metrics", now: 1015)
        #expect(s.scrapes == 4 && s.lastError == nil)
        #expect(s.eventsPerSecond[0].points == [SVG.Point(-10, 100), SVG.Point(0, 100)])
        #expect(s.lagByPartition.map(\.name) == ["clickstream/0", "clickstream/2", "clickstream/10"])
        #expect(s.lagByPartition[0].points.map(\.y) == [50, 5, 0])
        #expect(s.deadLettersByReason.map(\.name) == ["late", "not_json"])
        #expect(s.flushLatency[0].points.count == 3)
        let page = Views.workers([s], interval: 5)
        #expect(page.contains("data-name=\"clickstream/0\" data-points=\"3\""))
        // A scrape with no flush since the previous one adds no latency point (idle: no data,
        // not the lifetime's quantiles).
        h.record("http://w:1/metrics", scrape(1020, consumed: 1600, lag: 0))
        let idle = h.summary("http://w:1/metrics", now: 1020)
        #expect(idle.flushLatency[0].points.count == 3)
        #expect(idle.eventsPerSecond[0].points.last == SVG.Point(0, 0))
        // Older than 15 minutes: dropped.
        h.record("http://w:1/metrics", scrape(1020 + 901, consumed: 1700, lag: 0))
        #expect(h.history("http://w:1/metrics").count == 1)
    }

    @Test("charts: one polyline per series with its point count; an empty chart says so")
    func charts() {
        let svg = SVG.lineChart([SVG.Series(name: "<x>", points: [.init(0, 1), .init(1, 2)])], title: "t<1>")
        #expect(svg.contains("data-name=\"&lt;x&gt;\" data-points=\"2\""))
        #expect(!svg.contains("<x>") && !svg.contains("t<1>"))
        #expect(SVG.lineChart([], title: "e").contains("no data yet"))
    }

    @Test("metrics URLs and HTTP replies")
    func fetchParsing() {
        #expect(MetricsFetch.parse("http://127.0.0.1:9100/metrics")! == ("127.0.0.1", 9100, "/metrics"))
        #expect(MetricsFetch.parse("http://w:9100")! == ("w", 9100, "/metrics"))
        #expect(MetricsFetch.parse("https://w/metrics") == nil)
        #expect(MetricsFetch.parse("http://w:x/metrics") == nil)
    }
}

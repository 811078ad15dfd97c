import EddyCore
import EddyTopology
import Testing

/// Config errors, checked by their messages and positions.
@Suite struct TopologyErrorTests {
    let base = """
        name: t
        source: {brokers: "b:9092", topic: events}
        key: user_id
        time: {field: ts, unit: ms}
        sink: {redis: "redis://127.0.0.1:6379"}
        features:

        """

    func errors(_ features: String, env: [String: String] = [:], prefix: String? = nil) -> [Diagnostic] {
        do {
            _ = try TopologyLoader(environment: env).parse((prefix ?? base) + features, file: "t.yaml")
            return []
        } catch {
            return error.diagnostics
        }
    }

    @Test func unknownKindSuggestsTheClosest() {
        let d = errors("  - {name: a, kind: cont, window: 1h}")
        #expect(d.count == 1)
        #expect(d[0].description.hasPrefix("t.yaml:7:21: error: unknown feature kind 'cont'"))
        #expect(d[0].fix?.contains("did you mean 'count'?") == true)
    }

    /// `sink.layout`: full by default, lean on request, anything else named
    /// with its position and the two choices.
    @Test func sinkLayout() throws {
        let feature = "  - {name: a, kind: count, window: 1h}"
        let loader = TopologyLoader(environment: [:])
        #expect(try loader.parse(base + feature, file: "t.yaml").sink.layout == .full)
        let lean = base.replacingOccurrences(of: "sink: {redis: \"redis://127.0.0.1:6379\"}",
                                             with: "sink: {redis: \"redis://127.0.0.1:6379\", layout: lean}")
        let t = try loader.parse(lean + feature, file: "t.yaml")
        #expect(t.sink.layout == .lean)
        #expect(t.planDescription.contains("layout lean"))
        let d = errors(feature, prefix: base.replacingOccurrences(of: "sink: {redis: \"redis://127.0.0.1:6379\"}",
                                                                  with: "sink: {redis: \"redis://127.0.0.1:6379\", layout: thin}"))
        #expect(d.count == 1)
        #expect(d.first?.description.hasPrefix("t.yaml:5:49: error: unknown sink.layout 'thin'") == true, "\(d)")
        #expect(d.first?.fix?.contains("lean") == true)
    }

    @Test func windowNotMultipleOfHop() {
        let d = errors("  - name: a\n    kind: count\n    window: 1h\n    hop: 7m")
        #expect(d.map(\.line) == [10])
        #expect(d[0].message == "window 1h is not a multiple of hop 7m")
    }

    @Test func duplicateFeatureNames() {
        let d = errors("  - {name: a, kind: count, window: 1h}\n  - {name: a, kind: sum, field: p, window: 1h}")
        #expect(d.count == 1)
        #expect(d[0].line == 8)
        #expect(d[0].message.contains("duplicate feature name 'a' (first defined on line 7)"))
        // Session columns clash too.
        let s = errors("  - {name: s, kind: session, gap: 1m}\n  - {name: s_start, kind: count, window: 1h}")
        #expect(s.first?.message.contains("duplicate feature name 's_start'") == true)
    }

    @Test func badDurations() {
        let d = errors("  - {name: a, kind: count, window: 60}\n  - {name: b, kind: session, gap: 5 minutes}")
        #expect(d.count == 2)
        #expect(d[0].message == "'60' is not a duration for window")
        #expect(d[0].fix == "add a unit: 60ms, 60s, 60m, 60h or 60d")
        #expect(d[1].line == 8)
    }

    @Test func unknownVariable() {
        let prefix = base.replacingOccurrences(of: "b:9092", with: "${KAFKA_HOST}:9092")
        let d = errors("  - {name: a, kind: count, window: 1h}", prefix: prefix)
        #expect(d.count == 1)
        #expect(d[0].line == 2)
        #expect(d[0].message == "unknown variable 'KAFKA_HOST' in source.brokers: it is not set in the environment")
        #expect(d[0].fix == "set KAFKA_HOST, or give a default: ${KAFKA_HOST:-value}")
        // Set, or defaulted: fine.
        #expect(errors("  - {name: a, kind: count, window: 1h}", env: ["KAFKA_HOST": "k"], prefix: prefix).isEmpty)
        let defaulted = base.replacingOccurrences(of: "b:9092", with: "${KAFKA_HOST:-localhost}:9092")
        #expect(errors("  - {name: a, kind: count, window: 1h}", prefix: defaulted).isEmpty)
    }

    @Test func badFilterSyntax() {
        let d = errors("  - name: a\n    kind: count\n    window: 1h\n    where: event = \"click\"")
        #expect(d.count == 1)
        #expect(d[0].line == 10)
        #expect(d[0].column == 18)  // points at the '='
        #expect(d[0].message == "bad filter syntax in feature 'a': '=' is not an operator; use '==' to compare")
        let unquoted = errors("  - {name: a, kind: count, window: 1h, where: event == click}")
        #expect(unquoted.first?.message.contains("quote strings, as in \"click\"") == true)
        let unclosed = errors("  - {name: a, kind: count, window: 1h, where: \"(a == 1 or b in [1, 2]\"}")
        #expect(unclosed.first?.message.contains("expected ')'") == true)
    }

    @Test func everyProblemInOneFeatureIsReported() {
        let d = errors("  - {name: b, kind: sum, field: p, window: 1h, hop: 7m, where: \"x = 1\"}")
        #expect(d.map(\.message).contains { $0.hasPrefix("bad filter syntax") })
        #expect(d.map(\.message).contains("window 1h is not a multiple of hop 7m"))
    }

    @Test func typosInKeysAreCaught() {
        let d = errors("  - {name: a, kind: count, windw: 1h}")
        #expect(d.contains { $0.message == "unknown key 'windw' in a feature" && $0.fix == "did you mean 'window'?" })
    }

    @Test func yamlSyntaxErrorsHaveLines() {
        let d = errors("  - {name: a, kind: count, window: 1h\n  - oops: [")
        #expect(d.count == 1)
        #expect(d[0].message.hasPrefix("YAML syntax"))
        #expect(d[0].line >= 7)
    }

    @Test func validFileCompiles() throws {
        let t = try TopologyLoader(environment: [:]).parse(base + """
              - {name: items, kind: last_n, field: item.id, n: 5, distinct: true, where: "kind in ['view', 'cart'] and not (price < 0)"}
              - {name: c, kind: count, window: 24h}
            """, file: "t.yaml")
        #expect(t.features.count == 2)
        #expect(t.features[1].kind == .window(.count, field: nil, windowMs: 86_400_000, hopMs: 7_200_000))
        #expect(t.features[0].filter == .and(.isIn(FieldPath(["kind"]), [.string("view"), .string("cart")]),
                                             .not(.compare(FieldPath(["price"]), .less, .number(0)))))
        #expect(t.allowedLatenessMs == 300_000)
        #expect(t.deadLetter.topic == "events.dlq")
        #expect(parseDuration("1h30m") == 5_400_000)
        #expect(parseDuration("500ms") == 500)
        #expect(parseDuration("7d") == 604_800_000)
    }

    @Test func embeddedTopologiesMatchTheirFiles() throws {
        for (name, text) in EmbeddedTopologies.all {
            #expect(try String(contentsOfFile: "Topologies/\(name).yaml", encoding: .utf8) == text)
        }
    }

    @Test func shippedTopologiesAreValid() throws {
        for name in ["clickstream", "payments", "engagement"] {
            let t = try TopologyLoader(environment: [:]).load(path: "Topologies/\(name).yaml")
            #expect(t.name == name)
        }
    }
}

import Foundation

import EddyCore
import EddyTopology
import Foundation
import Testing

/// A topology from YAML text (fails the test on errors).
func makeTopology(_ body: String, lateness: String = "5m") throws -> Topology {
    let yaml = """
        name: test
        source: {brokers: "localhost:9092", topic: events}
        key: user_id
        time: {field: ts, unit: ms}
        allowed_lateness: \(lateness)
        sink: {redis: "redis://127.0.0.1:6379"}
        features:
        \(body)
        """
    return try TopologyLoader(environment: [:]).parse(yaml, file: "test.yaml")
}

/// Feeds JSON events to a fresh engine; returns it and the outcomes.
@discardableResult
func feed(_ engine: FeatureEngine, _ events: [String]) -> [FeatureEngine.Outcome] {
    events.map { e in
        var bytes = Array(e.utf8)
        return bytes.withUnsafeMutableBytes { engine.process(UnsafeRawBufferPointer($0)) }
    }
}

/// The features of `key` read at `t`, as a JSON object.
func read(_ engine: FeatureEngine, _ key: String, at t: Int64) -> [String: Any] {
    var w = JSONWriter()
    w.raw(UInt8(ascii: "{"))
    let slot = Array(key.utf8).withUnsafeBytes { engine.store.lookup($0, hash: hashKey($0)) }
    engine.writeFeatures(slot, at: t, into: &w)
    w.raw(UInt8(ascii: "}"))
    return (try? JSONSerialization.jsonObject(with: Data(w.bytes))) as? [String: Any] ?? [:]
}

/// The raw JSON text of `key`'s features at `t`.
func readText(_ engine: FeatureEngine, _ key: String, at t: Int64) -> String {
    var w = JSONWriter()
    let slot = Array(key.utf8).withUnsafeBytes { engine.store.lookup($0, hash: hashKey($0)) }
    engine.writeFeatures(slot, at: t, into: &w)
    return String(decoding: w.bytes, as: UTF8.self)
}

func ev(_ user: String, _ ts: Int64, _ extra: String = "") -> String {
    "{\"user_id\":\"\(user)\",\"ts\":\(ts)\(extra.isEmpty ? "" : "," + extra)}"
}

func strings(_ v: Any?) -> [String] { (v as? [Any])?.map { "\($0)" } ?? [] }
func int(_ v: Any?) -> Int? { (v as? NSNumber)?.intValue }
func double(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }
func isNull(_ v: Any?) -> Bool { v is NSNull }

import EddyCore
import EddyReplay
import EddyTopology
import Foundation
import Testing

@Suite struct DecoderTests {
    func engine(_ key: String = "user.id", time: String = "{field: ts, unit: ms}") throws -> FeatureEngine {
        let yaml = """
            name: t
            source: {topic: e}
            key: \(key)
            time: \(time)
            sink: {}
            features:
              - {name: v, kind: last_n, field: v, n: 5}
              - {name: total, kind: sum, field: n, window: 1d, hop: 1h}
            """
        return FeatureEngine(topology: try EddyTopology.TopologyLoader(environment: [:]).parse(yaml, file: "t.yaml"))
    }

    func decode(_ e: FeatureEngine, _ s: String) -> RejectReason? {
        var b = Array(s.utf8)
        return b.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) }
    }

    @Test func nestedKeyEscapesAndUnicode() throws {
        let e = try engine()
        #expect(decode(e, #"{"a":[{"user":1}],"user":{"x":{"id":2},"id":"\u00e9t\u00E9 \ud83d\ude00\n"},"ts":5}"#) == nil)
        #expect(String(decoding: e.decoder.key, as: UTF8.self) == "été 😀\n")
        #expect(e.decoder.timestamp == 5)
        // An escaped member name still matches the path.
        #expect(decode(e, #"{"us\u0065r":{"id":7},"ts":6}"#) == nil)
        #expect(String(decoding: e.decoder.key, as: UTF8.self) == "7")
        // Last duplicate wins.
        #expect(decode(e, #"{"user":{"id":"a","id":"b"},"ts":6}"#) == nil)
        #expect(String(decoding: e.decoder.key, as: UTF8.self) == "b")
    }

    @Test func numbersOfEveryForm() throws {
        let e = try engine()
        for (text, value) in [("0", 0.0), ("-0", 0.0), ("12.5", 12.5), ("1e3", 1000), ("-2.5E-2", -0.025), ("1E+2", 100),
                              ("123456789012345678", 123456789012345678), ("0.1", 0.1), ("3.14159265358979", 3.14159265358979)] {
            #expect(decode(e, "{\"user\":{\"id\":1},\"ts\":1,\"n\":\(text)}") == nil, "\(text)")
            let slot = e.decoder.fields.index(of: FieldPath(["n"]))!
            #expect(e.decoder.field(slot).number == value, "\(text)")
        }
        for bad in ["01", "1.", ".5", "+1", "1e", "--1", "0x10", "NaN", "Infinity", "1.e3"] {
            #expect(decode(e, "{\"user\":{\"id\":1},\"ts\":1,\"n\":\(bad)}") == .notJSON, "\(bad)")
        }
    }

    /// What a decoder holds for the current event, as the engine reads it.
    func held(_ d: EventDecoder) -> [String] {
        var out = ["key=" + String(decoding: d.key, as: UTF8.self), "raw=" + String(decoding: d.rawKey, as: UTF8.self),
                   "ts=\(d.timestamp)", "hash=\(d.keyHash)"]
        for i in 0..<d.fields.paths.count {
            let f = d.field(i)
            out.append("\(i): \(f.kind) \(f.number) \(f.boolValue) \(f.isTime) " + String(decoding: d.fieldBytes(i), as: UTF8.self))
        }
        return out
    }

    /// A deferred event's decoded fields, saved and put back into a decoder
    /// that has decoded other events since, read as a fresh decode of the
    /// same bytes does; events whose fields or key are not in their own
    /// bytes are not saved.
    @Test func savedEventRestoresAsDecoded() throws {
        let e = try engine()
        let d = e.makeDecoder()
        let messages = [
            #"{"user":{"id":"alice"},"ts":10,"v":"x","n":2.5}"#,
            #"{"ts":11,"user":{"id":42},"n":-1e3,"v":[1,{"a":"b"}],"extra":{"user":{"id":"no"}}}"#,
            #"{"user":{"id":"b"},"ts":12,"v":true}"#,
            #"{"user":{"id":"c","x":null},"ts":13,"v":null,"n":"7"}"#,
        ]
        let other = Array(#"{"user":{"id":"zzzzzzzz"},"ts":99,"v":"other","n":123}"#.utf8)
        let saved = UnsafeMutableRawPointer.allocate(byteCount: e.decoder.savedEventSize, alignment: 16)
        defer { saved.deallocate() }
        for m in messages {
            let bytes = Array(m.utf8)
            bytes.withUnsafeBytes { message in
                #expect(e.decoder.decode(message) == nil, "\(m)")
                let expected = held(e.decoder)
                #expect(e.decoder.save(into: saved), "\(m)")
                other.withUnsafeBytes { #expect(e.decoder.decode($0) == nil) }
                #expect(held(e.decoder) != expected)
                e.decoder.restore(from: saved, message: message)
                #expect(held(e.decoder) == expected, "\(m)")
                // Into another decoder of the same topology too (the worker
                // saves from a lookahead decoder, restores into the engine's).
                d.restore(from: saved, message: message)
                #expect(held(d) == expected, "\(m)")
            }
        }
        // An unescaped string lives in the decoder's scratch: not saved.
        _ = Array(#"{"user":{"id":"a"},"ts":1,"v":"a\nb"}"#.utf8).withUnsafeBytes { message in
            #expect(e.decoder.decode(message) == nil)
            #expect(!e.decoder.save(into: saved))
        }
        // Nor a key from elsewhere (the Kafka message key).
        let messageKeyed = try engine("kafka", time: "kafka")
        _ = Array(#"{"v":"x"}"#.utf8).withUnsafeBytes { message in
            Array("user-9".utf8).withUnsafeBytes { key in
                #expect(messageKeyed.decoder.decode(message, messageKey: key, messageTimestamp: 42) == nil)
                #expect(!messageKeyed.decoder.save(into: saved))
            }
        }
    }

    @Test func timeUnits() throws {
        let s = try engine(time: "{field: t, unit: s}")
        #expect(decode(s, #"{"user":{"id":1},"t":1700000000.25}"#) == nil)
        #expect(s.decoder.timestamp == 1_700_000_000_250)
        let r = try engine(time: "{field: t, unit: rfc3339}")
        #expect(decode(r, #"{"user":{"id":1},"t":"2024-02-29T23:59:59.5+01:00"}"#) == nil)
        #expect(r.decoder.timestamp == 1_709_247_599_500)
        #expect(decode(r, #"{"user":{"id":1},"t":"2024-02-29"}"#) == .badTime)
        #expect(decode(r, #"{"user":{"id":1},"t":17}"#) == .badTime)
        let ms = try engine()
        #expect(decode(ms, #"{"user":{"id":1},"ts":"17"}"#) == .badTime)
        #expect(decode(ms, #"{"user":{"id":1},"ts":true}"#) == .badTime)
    }

    @Test func messageKeyAndTimestamp() throws {
        let e = try engine("kafka", time: "kafka")
        var msg = Array(#"{"v":1}"#.utf8)
        let key = Array("user-9".utf8)
        let r = msg.withUnsafeMutableBytes { m in
            key.withUnsafeBytes { k in e.decode(UnsafeRawBufferPointer(m), messageKey: k, messageTimestamp: 42) }
        }
        #expect(r == nil)
        #expect(e.decoder.timestamp == 42)
        #expect(msg.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0), messageKey: nil) } == .missingKey)
    }

    /// Random bytes, truncations and mutations of valid events: never a
    /// crash, truncations always rejected, and validity agrees with
    /// Foundation's parser on mutated documents.
    @Test func fuzzNeverCrashes() throws {
        let e = try engine()
        let valid = #"{"user":{"id":"u\u00e9","x":[1,2.5e3,{"q":null}]},"ts":1700000000000,"v":"a\"b","n":-12.75,"b":true}"#
        #expect(decode(e, valid) == nil)
        let bytes = Array(valid.utf8)
        for cut in 0..<bytes.count {
            var prefix = Array(bytes[0..<cut])
            let r = prefix.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) }
            #expect(r != nil, "truncated at \(cut) must be rejected")
        }
        var rng = SplitMix64(seed: 7)
        var agree = 0
        for round in 0..<20_000 {
            var doc = bytes
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let i = Int(rng.next() % UInt64(doc.count))
                switch rng.next() % 3 {
                case 0: doc[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: doc.remove(at: i)
                default:
                    let alphabet = Array("{}[]\",:\\0aeE-.tfnu".utf8)
                    doc.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
                }
            }
            let ours = doc.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) }
            var foundation = (try? JSONSerialization.jsonObject(with: Data(doc), options: [.fragmentsAllowed])) != nil
            let text = String(decoding: doc, as: UTF8.self)
            // Foundation reads trailing commas (not RFC 8259) and refuses lone
            // surrogate escapes (RFC grammar allows them; we read U+FFFD).
            let compact = text.filter { !$0.isWhitespace }
            if compact.contains(",]") || compact.contains(",}") { foundation = false }
            if text.lowercased().contains("\\ud") { continue }
            if ours == .notJSON || ours == .badUTF8 { #expect(!foundation, "round \(round): we rejected what Foundation reads: \(text)") }
            if ours == nil { #expect(foundation, "round \(round): we accepted what Foundation rejects: \(text)"); agree += 1 }
        }
        #expect(agree > 100)
        for _ in 0..<20_000 {
            var junk = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = junk.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) }
        }
    }
}

import EddyCore
import EddyTopology
import Foundation
import Testing

/// `key: {field: email, hash: sha256, salt: "${EDDY_KEY_SALT}"}`: the loader's diagnostics, and the
/// HMAC itself against published vectors and the openssl CLI.
@Suite struct KeyHashingTests {
    func load(key: String, env: [String: String] = [:]) -> (Topology?, [Diagnostic]) {
        let text = """
            name: t
            source: {brokers: "b:9092", topic: events}
            key: \(key)
            time: {field: ts, unit: ms}
            sink: {redis: "redis://127.0.0.1:6379"}
            features:
              - {name: a, kind: count, window: 1h}

            """
        do {
            return (try TopologyLoader(environment: env).parse(text, file: "t.yaml"), [])
        } catch {
            return (nil, error.diagnostics)
        }
    }

    static let salt = "0123456789abcdef0123456789abcdef"

    @Test func hashedKeyLoadsAndHidesTheSalt() throws {
        let (t, d) = load(key: "{field: email, hash: sha256, salt: \"${EDDY_KEY_SALT}\"}", env: ["EDDY_KEY_SALT": Self.salt])
        #expect(d.isEmpty, "\(d)")
        let topology = try #require(t)
        #expect(topology.key == .field(FieldPath(["email"])))
        #expect(topology.keyHashing == KeyHashing(algorithm: .sha256, salt: Array(Self.salt.utf8)))
        #expect(topology.planDescription.contains("field email, stored as hmac-sha256 (salt ***)"))
        #expect(!topology.planDescription.contains(Self.salt))
        // A plain key has no hashing.
        #expect(load(key: "email").0?.keyHashing == nil)
    }

    @Test func unknownAlgorithm() {
        let d = load(key: "{field: email, hash: md5, salt: \(Self.salt)}").1
        #expect(d.count == 1)
        #expect(d.first?.description.hasPrefix("t.yaml:3:27: error: unknown key.hash 'md5'") == true, "\(d)")
        #expect(d.first?.fix?.contains("sha256") == true)
    }

    @Test func missingSalt() {
        let d = load(key: "{field: email, hash: sha256}").1
        #expect(d.count == 1)
        #expect(d.first?.description.hasPrefix("t.yaml:3:27: error: key.hash needs a salt") == true, "\(d)")
        #expect(d.first?.fix?.contains("EDDY_KEY_SALT") == true)
    }

    @Test func unsetSaltVariable() {
        let d = load(key: "{field: email, hash: sha256, salt: \"${EDDY_KEY_SALT}\"}").1
        #expect(d.count == 1)
        #expect(d.first?.description.hasPrefix("t.yaml:3:41: error: unknown variable 'EDDY_KEY_SALT' in key.salt") == true, "\(d)")
        #expect(d.first?.fix?.contains("set EDDY_KEY_SALT") == true)
    }

    @Test func emptyOrShortSalt() {
        let empty = load(key: "{field: email, hash: sha256, salt: \"${EDDY_KEY_SALT:-}\"}").1
        #expect(empty.first?.message == "key.salt is empty", "\(empty)")
        let short = load(key: "{field: email, hash: sha256, salt: \"${S}\"}", env: ["S": "tiny"]).1
        #expect(short.first?.message == "key.salt is 4 bytes; at least 16 are needed", "\(short)")
        #expect(short.first?.fix?.contains("openssl rand -hex 32") == true)
    }

    @Test func saltWithoutHash() {
        let d = load(key: "{field: email, salt: \(Self.salt)}").1
        #expect(d.first?.message == "key has a salt but no hash", "\(d)")
    }

    /// RFC 4231 test case 2, and the openssl CLI on the same salt and key.
    @Test func hmacMatchesRFC4231AndOpenSSL() throws {
        let rfc = KeyHashing(salt: Array("Jefe".utf8)).entityKey("what do ya want for nothing?")
        #expect(rfc == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")

        let email = "Ada.Lovelace@example.com"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["openssl", "dgst", "-sha256", "-hmac", Self.salt]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        input.fileHandleForWriting.write(Data(email.utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let expected = try #require(text.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        let hashing = KeyHashing(salt: Array(Self.salt.utf8))
        #expect(hashing.entityKey(email) == expected)
        #expect(expected.count == 64)
        // Keys are hashed as given: no case folding.
        #expect(hashing.entityKey(email.lowercased()) != expected)
    }
}

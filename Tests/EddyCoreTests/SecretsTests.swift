import EddyCore
import Testing

@Suite("Secrets are masked for display")
struct SecretsTests {
    @Test("URL passwords", arguments: [
        ("redis://user:pw@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:pw@host", "redis://:***@host"),
        ("redis://pw@host", "redis://***@host"),
        ("rediss+cluster://u:p@ss@a:1,b:2", "rediss+cluster://u:***@a:1,b:2"),
        ("unix://u:pw@/run/redis.sock?db=1", "unix://u:***@/run/redis.sock?db=1"),
        ("u:pw@host:notaport", "u:***@host:notaport"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("redis://host/path@x", "redis://host/path@x"),
        ("", ""),
    ])
    func urls(input: String, expected: String) {
        #expect(Secrets.redactingURLPassword(input) == expected)
    }

    @Test("Kafka properties: secrets by name, everything else shown")
    func properties() {
        for name in ["sasl.password", "ssl.key.password", "ssl.keystore.password", "sasl.jaas.config",
                     "sasl.oauthbearer.client.secret", "ssl.key.pem", "SASL.PASSWORD"] {
            #expect(Secrets.isSecretProperty(name), "\(name)")
            #expect(Secrets.displayedValue(ofProperty: name, "x") == "***")
        }
        for name in ["sasl.username", "sasl.mechanism", "security.protocol", "ssl.ca.location", "fetch.min.bytes"] {
            #expect(!Secrets.isSecretProperty(name), "\(name)")
            #expect(Secrets.displayedValue(ofProperty: name, "x") == "x")
        }
    }
}

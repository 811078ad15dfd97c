/// TLS to Redis (`rediss://`, `rediss+cluster://`). Debian's hiredis 0.14 has
/// no TLS, so hiredis still opens the socket and parses RESP while OpenSSL
/// (`CEddyRedisTLS`) encrypts what goes over it.
///
/// In the URL's query: `ca=/path/ca.pem` (else the system's CAs),
/// `cert=/path/client.pem` and `key=/path/client.key` (mutual TLS),
/// `sni=name` (the server name sent and verified; else the host), and
/// `insecure=true` (no certificate check: a warning at start; tests only).
public struct RedisTLS: Sendable, Hashable {
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var serverName: String?
    public var insecure: Bool

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, serverName: String? = nil,
                insecure: Bool = false) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.insecure = insecure
    }

    /// The query parameters of these settings (`ca=…&sni=…`), empty when all are defaults.
    var queryItems: [String] {
        var items: [String] = []
        if let caFile { items.append("ca=\(RedisTLS.escaped(caFile))") }
        if let certFile { items.append("cert=\(RedisTLS.escaped(certFile))") }
        if let keyFile { items.append("key=\(RedisTLS.escaped(keyFile))") }
        if let serverName { items.append("sni=\(RedisTLS.escaped(serverName))") }
        if insecure { items.append("insecure=true") }
        return items
    }

    /// The names this type reads from a query.
    static let parameterNames: Set<String> = ["ca", "cert", "key", "sni", "insecure"]

    /// Sets one query parameter; `false` for a name that is not a TLS setting.
    mutating func set(_ name: Substring, _ value: String) throws(RedisURLError) -> Bool {
        switch name {
        case "ca": caFile = value
        case "cert": certFile = value
        case "key": keyFile = value
        case "sni": serverName = value
        case "insecure":
            switch value {
            case "true", "1", "yes": insecure = true
            case "false", "0", "no": insecure = false
            default: throw .invalidTLSParameter(name: "insecure", reason: "expected true or false, got '\(value)'")
            }
        default: return false
        }
        return true
    }

    /// `&`, `=`, `%`, `#` and spaces escaped, so a path survives a query.
    static func escaped(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "&"), UInt8(ascii: "="), UInt8(ascii: "%"), UInt8(ascii: "#"), UInt8(ascii: " "),
                 UInt8(ascii: "?"), UInt8(ascii: "+"), 0..<0x20, 0x7F...0xFF:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            default:
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }
}

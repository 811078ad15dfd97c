/// Credentials given apart from the URL (environment, a password file), so
/// that no password has to sit in a topology file or on a command line.
extension RedisTarget {
    /// The ACL user name of this target (`nil`: the default user).
    public var username: String? {
        switch self {
        case let .single(url): return url.username
        case let .cluster(url): return url.username
        }
    }

    /// The password of this target (`nil`: no `AUTH`).
    public var password: String? {
        switch self {
        case let .single(url): return url.password
        case let .cluster(url): return url.password
        }
    }

    /// This target with `password` (and `username`) used where the URL gives no
    /// password. A URL's own credentials win: they are the most specific.
    public func fillingCredentials(username: String?, password: String?) -> RedisTarget {
        guard self.password == nil, let password else { return self }
        switch self {
        case var .single(url):
            url.username = url.username ?? username
            url.password = password
            return .single(url)
        case var .cluster(url):
            url.username = url.username ?? username
            url.password = password
            return .cluster(url)
        }
    }

    /// The URL text that parses back to this target, credentials included and
    /// percent-encoded. For handing a resolved target on as text (a worker's
    /// configuration); never print it: ``description`` is the printable form.
    public var urlTextWithCredentials: String {
        func userInfo(_ username: String?, _ password: String?) -> String {
            guard let password else { return "" }
            return "\(percentEncoded(username ?? "")):\(percentEncoded(password))@"
        }
        func query(_ tls: RedisTLS?) -> String {
            guard let items = tls?.queryItems, !items.isEmpty else { return "" }
            return "?" + items.joined(separator: "&")
        }
        switch self {
        case let .single(url):
            let credentials = userInfo(url.username, url.password)
            switch url.endpoint {
            case .tcp:
                return "\(url.scheme.rawValue)://\(credentials)\(url.endpoint)\(url.database == 0 ? "" : "/\(url.database)")"
                    + query(url.tls)
            case let .unix(path):
                return "unix://\(credentials)\(path)\(url.database == 0 ? "" : "?db=\(url.database)")"
            }
        case let .cluster(url):
            return "\(url.tls == nil ? "redis" : "rediss")+cluster://\(userInfo(url.username, url.password))"
                + url.seeds.map(\.description).joined(separator: ",") + query(url.tls)
        }
    }
}

/// RFC 3986 user-info encoding: unreserved characters stay, every other byte is `%XX`.
private func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
             UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
        }
    }
    return out
}

extension RedisTarget {
    /// The TLS settings (`rediss://`, `rediss+cluster://`); `nil` for plaintext.
    public var tls: RedisTLS? {
        switch self {
        case let .single(url): return url.tls
        case let .cluster(url): return url.tls
        }
    }

    /// This target with TLS settings the URL leaves unset taken from `defaults` (e.g. the
    /// environment's CA file); a plaintext target is returned as it is.
    public func fillingTLS(_ defaults: RedisTLS) -> RedisTarget {
        func filled(_ tls: RedisTLS?) -> RedisTLS? {
            guard var tls else { return nil }
            tls.caFile = tls.caFile ?? defaults.caFile
            tls.certFile = tls.certFile ?? defaults.certFile
            tls.keyFile = tls.keyFile ?? defaults.keyFile
            tls.serverName = tls.serverName ?? defaults.serverName
            tls.insecure = tls.insecure || defaults.insecure
            return tls
        }
        switch self {
        case var .single(url):
            url.tls = filled(url.tls)
            return .single(url)
        case var .cluster(url):
            url.tls = filled(url.tls)
            return .cluster(url)
        }
    }
}

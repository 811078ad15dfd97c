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
        switch self {
        case let .single(url):
            let credentials = userInfo(url.username, url.password)
            switch url.endpoint {
            case .tcp:
                return "redis://\(credentials)\(url.endpoint)\(url.database == 0 ? "" : "/\(url.database)")"
            case let .unix(path):
                return "unix://\(credentials)\(path)\(url.database == 0 ? "" : "?db=\(url.database)")"
            }
        case let .cluster(url):
            return "redis+cluster://\(userInfo(url.username, url.password))"
                + url.seeds.map(\.description).joined(separator: ",")
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

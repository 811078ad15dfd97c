/// The string grammar behind ``RedisURL/init(parsing:)``.
enum RedisURLParser {
    /// A single-server URL; a cluster URL is rejected with ``RedisURLError/clusterURL``.
    static func parse(_ text: String) throws(RedisURLError) -> RedisURL {
        switch try parseTarget(text) {
        case let .single(url): return url
        case .cluster: throw .clusterURL
        }
    }

    /// Any URL form: `redis://`, `unix://` or `redis+cluster://`.
    static func parseTarget(_ text: String) throws(RedisURLError) -> RedisTarget {
        guard !text.isEmpty else { throw .empty }
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else {
            throw .missingScheme(text)
        }
        let scheme = text[..<colon].lowercased()
        let rest = text[text.index(colon, offsetBy: 3)...]
        switch scheme {
        case "redis":
            return .single(try parseTCP(rest, tls: false))
        case "rediss":
            return .single(try parseTCP(rest, tls: true))
        case "unix":
            return .single(try parseUnix(rest))
        case "redis+cluster":
            return .cluster(try parseCluster(rest, tls: false))
        case "rediss+cluster":
            return .cluster(try parseCluster(rest, tls: true))
        default:
            throw .unsupportedScheme(scheme)
        }
    }

    /// `[user:password@]host[:port][,host[:port]...]`, optionally followed by `/` or `/0`.
    private static func parseCluster(_ text: Substring, tls: Bool) throws(RedisURLError) -> RedisClusterURL {
        let query = try splitQuery(text, tls: tls, allowsDatabase: false)
        let rest = query.rest
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let path = rest[authorityEnd...]
        if path.count > 1 {
            let database = try parseDatabase(path.dropFirst())
            guard database == 0 else { throw .clusterDatabase(String(path.dropFirst())) }
        }
        let (username, password, hosts) = try splitUserInfo(rest[..<authorityEnd])
        guard !hosts.isEmpty else { throw .missingHost }
        var seeds: [RedisURL.Endpoint] = []
        for seed in hosts.split(separator: ",", omittingEmptySubsequences: false) {
            guard !seed.isEmpty else { throw .emptyClusterSeed(String(hosts)) }
            let (host, port) = try splitHostPort(seed)
            let endpoint = RedisURL.Endpoint.tcp(host: host, port: port)
            if !seeds.contains(endpoint) { seeds.append(endpoint) }
        }
        return RedisClusterURL(seeds: seeds, username: username, password: password, tls: query.tls)
    }

    /// `[user:password@]host[:port][/db][?db=N]`
    private static func parseTCP(_ rest: Substring, tls: Bool) throws(RedisURLError) -> RedisURL {
        let query = try splitQuery(rest, tls: tls, allowsDatabase: true)
        let (beforeQuery, queryDatabase) = (query.rest, query.database)
        let authorityEnd = beforeQuery.firstIndex(of: "/") ?? beforeQuery.endIndex
        let authority = beforeQuery[..<authorityEnd]
        let path = beforeQuery[authorityEnd...]

        let (username, password, hostPort) = try splitUserInfo(authority)
        let (host, port) = try splitHostPort(hostPort)

        var database = 0
        if path.count > 1 {
            database = try parseDatabase(path.dropFirst())
        }
        if let queryDatabase {
            database = queryDatabase
        }
        return RedisURL(endpoint: .tcp(host: host, port: port),
                        username: username, password: password, database: database, tls: query.tls)
    }

    /// `[user:password@]/absolute/path[?db=N]`
    private static func parseUnix(_ rest: Substring) throws(RedisURLError) -> RedisURL {
        let query = try splitQuery(rest, tls: false, allowsDatabase: true)
        let (beforeQuery, queryDatabase) = (query.rest, query.database)
        var pathPart = beforeQuery
        var username: String?
        var password: String?
        if !beforeQuery.hasPrefix("/"), let at = beforeQuery.firstIndex(of: "/").flatMap({ slash in
            beforeQuery[..<slash].lastIndex(of: "@")
        }) {
            (username, password, _) = try splitUserInfo(beforeQuery[...at])
            pathPart = beforeQuery[beforeQuery.index(after: at)...]
        }
        guard pathPart.hasPrefix("/"), pathPart.count > 1, !pathPart.hasSuffix("/") else {
            throw .invalidSocketPath(String(pathPart))
        }
        return RedisURL(endpoint: .unix(path: String(pathPart)),
                        username: username, password: password, database: queryDatabase ?? 0)
    }

    /// Splits off the query: `db=N` (where a database is allowed) and, with `tls`, the TLS
    /// settings of ``RedisTLS``. Returns the TLS settings when `tls`, even if none were given.
    private static func splitQuery(_ text: Substring, tls: Bool, allowsDatabase: Bool)
        throws(RedisURLError) -> (rest: Substring, database: Int?, tls: RedisTLS?)
    {
        var settings: RedisTLS? = tls ? RedisTLS() : nil
        guard let question = text.firstIndex(of: "?") else { return (text, nil, settings) }
        var database: Int?
        for parameter in text[text.index(after: question)...].split(separator: "&") {
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if pair[0] == "db", pair.count == 2, allowsDatabase {
                database = try parseDatabase(pair[1])
                continue
            }
            if RedisTLS.parameterNames.contains(String(pair[0])) {
                guard settings != nil else {
                    throw .invalidTLSParameter(name: String(pair[0]), reason: "TLS settings need a rediss:// or rediss+cluster:// URL")
                }
                guard pair.count == 2, !pair[1].isEmpty else {
                    throw .invalidTLSParameter(name: String(pair[0]), reason: "no value given")
                }
                let value = try percentDecode(pair[1], component: "TLS setting '\(pair[0])'")
                _ = try settings!.set(pair[0], value)
                continue
            }
            throw .unsupportedQueryParameter(String(pair[0]))
        }
        return (text[..<question], database, settings)
    }

    /// Splits `user:password@hostport`; returns the percent-decoded credentials.
    private static func splitUserInfo(
        _ authority: Substring
    ) throws(RedisURLError) -> (username: String?, password: String?, rest: Substring) {
        guard let at = authority.lastIndex(of: "@") else { return (nil, nil, authority) }
        let userInfo = authority[..<at]
        let rest = authority[authority.index(after: at)...]
        guard let colon = userInfo.firstIndex(of: ":") else {
            throw .invalidUserInfo(
                "'user@' without a password; use redis://:password@host or redis://user:password@host")
        }
        let user = try percentDecode(userInfo[..<colon], component: "user name")
        let password = try percentDecode(userInfo[userInfo.index(after: colon)...], component: "password")
        guard !password.isEmpty else {
            throw .invalidUserInfo("empty password")
        }
        return (user.isEmpty ? nil : user, password, rest)
    }

    /// Splits `host[:port]` or `[v6][:port]`.
    private static func splitHostPort(_ text: Substring) throws(RedisURLError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidHost(String(text)) }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidHost(String(text)) }
                portText = after.dropFirst()
            }
            guard host.contains(":") else { throw .invalidHost(String(text)) }
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw .invalidHost(String(text)) }
            host = parts[0]
            portText = parts.count == 2 ? parts[1] : nil
        }
        guard !host.isEmpty else { throw .missingHost }
        guard host.allSatisfy({ !$0.isWhitespace && $0 != "[" && $0 != "]" }) else {
            throw .invalidHost(String(host))
        }
        var port = RedisURL.defaultPort
        if let portText {
            guard let value = parseDecimal(portText), (1...65_535).contains(value) else {
                throw .invalidPort(String(portText))
            }
            port = value
        }
        return (String(host), port)
    }

    private static func parseDatabase(_ text: Substring) throws(RedisURLError) -> Int {
        guard let value = parseDecimal(text) else { throw .invalidDatabase(String(text)) }
        return value
    }

    /// Non-negative decimal made of ASCII digits only (no sign, no spaces), at most 9 digits.
    private static func parseDecimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 9, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return nil
        }
        return Int(text)
    }

    private static func percentDecode(_ text: Substring, component: String) throws(RedisURLError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw .invalidPercentEncoding(component: component)
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scrapes each worker's `/metrics` every `interval` seconds on a thread of its own, into a
/// `WorkerHistory` (which keeps 15 minutes).
final class Scraper: @unchecked Sendable {
    let urls: [String]
    let interval: Double
    let history: WorkerHistory
    let token: String?
    private let stopped = Locked(false)

    init(urls: [String], interval: Double, history: WorkerHistory, token: String? = nil) {
        self.urls = urls
        self.interval = max(interval, 0.1)
        self.history = history
        self.token = token
    }

    func start() {
        let thread = Thread { [self] in
            while !stopped.get() {
                let began = Date().timeIntervalSince1970
                for url in urls {
                    let now = Date().timeIntervalSince1970
                    switch MetricsFetch.get(url, timeout: min(interval, 5), bearerToken: token) {
                    case .success(let text): history.record(url, Scrape(time: now, samples: PrometheusTextParser.parse(text)))
                    case .failure(let e): history.record(url, Scrape(time: now, samples: nil, error: e.description))
                    }
                }
                let rest = interval - (Date().timeIntervalSince1970 - began)
                if rest > 0 { Thread.sleep(forTimeInterval: rest) }
            }
        }
        thread.name = "eddy-console-scraper"
        thread.start()
    }

    func stop() { stopped.set(true) }
}

public struct FetchError: Error, CustomStringConvertible {
    public var description: String
}

/// A plain HTTP/1.0 GET over a blocking socket (a worker's `/metrics` is plain HTTP on a
/// private address), with a timeout and an optional bearer token; chunked replies are
/// decoded. (No HTTPS: a worker serving `--http` with `--tls-cert` cannot be scraped yet.)
public enum MetricsFetch {
    /// `http://host:port/path` → (host, port, path); nil for anything else.
    public static func parse(_ url: String) -> (host: String, port: Int, path: String)? {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/metrics" : String(rest[slash...])
        var host = String(authority), port = 80
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { guard let p = Int(after.dropFirst()) else { return nil }; port = p }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = p
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        return (host, port, path)
    }

    public static func get(_ url: String, timeout: Double, bearerToken: String? = nil) -> Result<String, FetchError> {
        guard let (host, port, path) = parse(url) else { return .failure(FetchError(description: "not an http://HOST:PORT/PATH URL")) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            return .failure(FetchError(description: "cannot resolve \(host)"))
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return .failure(FetchError(description: "socket failed")) }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: .init((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            return .failure(FetchError(description: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))"))
        }
        let authorization = bearerToken.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host):\(port)\r\nAccept: text/plain\r\n\(authorization)Connection: close\r\n\r\n".utf8)
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return .failure(FetchError(description: "send failed")) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
            if out.count > 32 << 20 { return .failure(FetchError(description: "reply over 32 MiB")) }
        }
        return decode(out)
    }

    /// An HTTP reply → its body when the status is 200.
    static func decode(_ bytes: [UInt8]) -> Result<String, FetchError> {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return .failure(FetchError(description: "no HTTP reply")) }
        let head = text[..<split.lowerBound]
        var body = String(text[split.upperBound...])
        let status = head.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        guard status == 200 else {
            return .failure(FetchError(description: status == 401
                ? "HTTP 401: the worker wants a bearer token (eddy serve --worker-metrics-token-file)" : "HTTP \(status)"))
        }
        if head.lowercased().contains("transfer-encoding: chunked") {
            var decoded = ""
            var rest = Substring(body)
            while let line = rest.range(of: "\r\n"), let size = Int(rest[..<line.lowerBound].split(separator: ";")[0], radix: 16), size > 0 {
                let start = line.upperBound
                let utf8 = rest.utf8
                guard let end = utf8.index(start, offsetBy: size, limitedBy: utf8.endIndex) else { break }
                decoded += rest[start..<end]
                rest = rest[end...].dropFirst(2)
            }
            body = decoded
        }
        return .success(body)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking `GET` over a plain socket (no TLS, HTTP/1.1 with
/// `Connection: close`): enough to scrape an Eddy process's `/metrics` from
/// a benchmark or a test without an HTTP client stack.
public enum HTTPGet {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The body of `http://host:port/path` (IPv4 `host`). Connecting is tried
    /// `connectAttempts` times, 100 ms apart (a server still starting); a
    /// read waits at most `timeoutSeconds`.
    public static func body(host: String, port: Int, path: String, connectAttempts: Int = 1,
                            timeoutSeconds: Int = 10) throws -> String {
        for attempt in 0..<max(connectAttempts, 1) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
            defer { close(fd) }
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr(host)
            addr.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard connected else {
                if attempt + 1 < connectAttempts { usleep(100_000) }
                continue
            }
            let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)
            guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else { continue }
            var response: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                response.append(contentsOf: chunk[0..<n])
            }
            let text = String(decoding: response, as: UTF8.self)
            guard let split = text.range(of: "\r\n\r\n") else {
                throw Failure(description: "bad HTTP reply from \(host):\(port)\(path)")
            }
            return String(text[split.upperBound...])
        }
        throw Failure(description: "cannot connect to \(host):\(port)")
    }
}

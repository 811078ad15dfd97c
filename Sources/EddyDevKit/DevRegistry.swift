import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An in-memory, Confluent-compatible schema registry for development and
/// tests (`eddy dev registry`): register (`POST /subjects/{s}/versions`),
/// get by id (`GET /schemas/ids/{id}`), subjects and their versions. A
/// blocking HTTP/1.1 server on loopback, one connection at a time.
///
/// `failing` answers 503 to everything (a registry in trouble); `stop()`
/// closes the port (a registry that is gone) and `start()` opens it again
/// with the same schemas.
public final class DevRegistry: @unchecked Sendable {
    struct Stored { var schema: String; var schemaType: String; var references: [[String: Any]] }
    let lock = NSLock()
    var schemas: [Stored] = []  // id = index + 1
    var subjects: [String: [Int]] = [:]  // subject -> ids by version
    var listener: Int32 = -1
    var thread: Thread?
    public private(set) var port: Int
    /// Answer every request with 503.
    public var failing: Bool {
        get { lock.lock(); defer { lock.unlock() }; return _failing }
        set { lock.lock(); _failing = newValue; lock.unlock() }
    }
    var _failing = false
    /// Requests served (by path), for tests.
    public private(set) var requests: [String] = []

    public init(port: Int = 0) throws {
        self.port = port
        try start()
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    public func start() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RegistryServerError("socket failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 64) == 0 else { close(fd); throw RegistryServerError("cannot listen on 127.0.0.1:\(port): errno \(errno)") }
        var got = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &got) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: got.sin_port))
        lock.lock(); listener = fd; lock.unlock()
        let t = Thread { [weak self] in self?.serve(fd) }
        t.name = "dev-registry"
        t.start()
        thread = t
    }

    /// Closes the port; the schemas stay.
    public func stop() {
        lock.lock(); let fd = listener; listener = -1; lock.unlock()
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    deinit { stop() }

    /// Registers a schema under `subject` (same text: same id), returns its id.
    @discardableResult
    public func register(subject: String, schema: String, schemaType: String = "AVRO", references: [[String: Any]] = []) -> Int {
        lock.lock(); defer { lock.unlock() }
        let id: Int
        if let i = schemas.firstIndex(where: { $0.schema == schema && $0.schemaType == schemaType }) { id = i + 1 } else {
            schemas.append(Stored(schema: schema, schemaType: schemaType, references: references))
            id = schemas.count
        }
        if !(subjects[subject]?.contains(id) ?? false) { subjects[subject, default: []].append(id) }
        return id
    }

    func serve(_ fd: Int32) {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 {
                lock.lock(); let open = listener == fd; lock.unlock()
                if !open { return }
                continue
            }
            handle(c)
            close(c)
        }
    }

    func handle(_ c: Int32) {
        var buf = [UInt8](repeating: 0, count: 65536)
        var data: [UInt8] = []
        var headerEnd = -1
        var contentLength = 0
        while true {
            let n = recv(c, &buf, buf.count, 0)
            if n <= 0 { return }
            data.append(contentsOf: buf[0..<n])
            if headerEnd < 0, let r = find(data, [13, 10, 13, 10]) {
                headerEnd = r + 4
                let head = String(decoding: data[0..<r], as: UTF8.self).lowercased()
                for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    contentLength = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if headerEnd >= 0, data.count >= headerEnd + contentLength { break }
        }
        let head = String(decoding: data[0..<headerEnd], as: UTF8.self)
        let requestLine = head.split(separator: "\r\n").first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        let method = parts.count > 0 ? String(parts[0]) : ""
        let target = parts.count > 1 ? String(parts[1]) : "/"
        let body = Data(data[headerEnd..<(headerEnd + contentLength)])
        let (status, json) = route(method, target, body)
        let payload = (try? JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed])) ?? Data()
        let reason = [200: "OK", 404: "Not Found", 422: "Unprocessable Entity", 503: "Service Unavailable"][status] ?? "Error"
        var response = Array("HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n".utf8)
        response.append(contentsOf: payload)
        var sent = 0
        while sent < response.count {
            let n = response[sent...].withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    func find(_ a: [UInt8], _ b: [UInt8]) -> Int? {
        guard a.count >= b.count else { return nil }
        for i in 0...(a.count - b.count) where Array(a[i..<i + b.count]) == b { return i }
        return nil
    }

    func route(_ method: String, _ target: String, _ body: Data) -> (Int, Any) {
        let path = String(target.split(separator: "?", maxSplits: 1).first ?? "")
        let comps = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        lock.lock()
        requests.append(method + " " + path)
        let failing = _failing
        lock.unlock()
        if failing { return (503, ["error_code": 50301, "message": "the registry is failing (dev registry: failing)"]) }
        let notFound: (Int, Any) = (404, ["error_code": 40403, "message": "Schema not found"])
        func describe(_ id: Int) -> [String: Any] {
            let s = schemas[id - 1]
            var out: [String: Any] = ["schema": s.schema, "id": id]
            if s.schemaType != "AVRO" { out["schemaType"] = s.schemaType }
            if !s.references.isEmpty { out["references"] = s.references }
            return out
        }
        lock.lock(); defer { lock.unlock() }
        switch (method, comps.count) {
        case ("GET", 3) where comps[0] == "schemas" && comps[1] == "ids":
            guard let id = Int(comps[2]), id >= 1, id <= schemas.count else { return notFound }
            return (200, describe(id))
        case ("GET", 1) where comps[0] == "subjects":
            return (200, subjects.keys.sorted())
        case ("GET", 3) where comps[0] == "subjects" && comps[2] == "versions":
            guard let ids = subjects[comps[1]] else { return (404, ["error_code": 40401, "message": "Subject not found"]) }
            return (200, Array(1...ids.count))
        case ("GET", 4) where comps[0] == "subjects" && comps[2] == "versions":
            guard let ids = subjects[comps[1]] else { return (404, ["error_code": 40401, "message": "Subject not found"]) }
            let v = comps[3] == "latest" ? ids.count : (Int(comps[3]) ?? 0)
            guard v >= 1, v <= ids.count else { return (404, ["error_code": 40402, "message": "Version not found"]) }
            var d = describe(ids[v - 1])
            d["subject"] = comps[1]; d["version"] = v
            return (200, d)
        case ("POST", 3) where comps[0] == "subjects" && comps[2] == "versions":
            guard let obj = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let schema = obj["schema"] as? String else {
                return (422, ["error_code": 42201, "message": "Invalid schema"])
            }
            let type = (obj["schemaType"] as? String) ?? "AVRO"
            let refs = (obj["references"] as? [[String: Any]]) ?? []
            lock.unlock()
            let id = register(subject: comps[1], schema: schema, schemaType: type, references: refs)
            lock.lock()
            return (200, ["id": id])
        default:
            return (404, ["error_code": 404, "message": "HTTP 404 Not Found"])
        }
    }
}

struct RegistryServerError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

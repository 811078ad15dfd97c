import Glibc

/// Reads a file or standard input in large blocks and hands out its lines
/// (without the newline) as borrowed byte views, without copying them.
public final class LineReader {
    let fd: Int32
    let ownsFD: Bool
    var buffer: UnsafeMutableRawPointer
    var capacity: Int
    var start = 0
    var end = 0
    var eof = false
    /// Bytes read so far.
    public private(set) var bytesRead = 0

    /// Opens `path`, or standard input for `-`.
    public init(path: String, blockSize: Int = 4 << 20) throws(ReplayError) {
        if path == "-" {
            fd = 0; ownsFD = false
        } else {
            fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw .io("cannot open \(path): \(String(cString: strerror(errno)))") }
            ownsFD = true
        }
        capacity = blockSize
        buffer = malloc(capacity)!
    }

    deinit {
        if ownsFD { close(fd) }
        free(buffer)
    }

    /// Calls `body` with each line; stops early when it returns false.
    public func forEachLine(_ body: (UnsafeRawBufferPointer) throws -> Bool) throws {
        while true {
            if let nl = memchr(buffer + start, 0x0A, end - start) {
                let lineEnd = buffer.distance(to: nl)
                var e = lineEnd
                if e > start, buffer.load(fromByteOffset: e - 1, as: UInt8.self) == 0x0D { e -= 1 }
                let line = UnsafeRawBufferPointer(start: buffer + start, count: e - start)
                start = lineEnd + 1
                if !(try body(line)) { return }
                continue
            }
            if eof {
                if end > start {
                    let line = UnsafeRawBufferPointer(start: buffer + start, count: end - start)
                    start = end
                    _ = try body(line)
                }
                return
            }
            try fill()
        }
    }

    private func fill() throws(ReplayError) {
        if start > 0 {
            memmove(buffer, buffer + start, end - start)
            end -= start
            start = 0
        }
        if end == capacity {
            capacity *= 2  // a line longer than the buffer
            buffer = realloc(buffer, capacity)!
        }
        let n = read(fd, buffer + end, capacity - end)
        if n < 0 {
            if errno == EINTR { return }
            throw .io("read failed: \(String(cString: strerror(errno)))")
        }
        if n == 0 { eof = true }
        end += n
        bytesRead += n
    }
}

/// Problems the replay tool reports to its user.
public enum ReplayError: Error, CustomStringConvertible {
    case io(String)
    case badLabel(line: Int, String)

    public var description: String {
        switch self {
        case .io(let m): return m
        case .badLabel(let line, let m): return "labels line \(line): \(m)"
        }
    }
}

import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file or standard input in large blocks and hands out its lines
/// (without the newline) as borrowed byte views, without copying them.
/// A gzip-compressed file (recognized by its magic bytes, whatever its name)
/// is decompressed on the fly with zlib's `gzread`.
public final class LineReader {
    let fd: Int32
    let ownsFD: Bool
    /// Set for a gzip file; it owns `fd` then.
    var gz: gzFile?
    var buffer: UnsafeMutableRawPointer
    var capacity: Int
    var start = 0
    var end = 0
    var eof = false
    /// Bytes handed out so far (decompressed bytes for a gzip file).
    public private(set) var bytesRead = 0
    /// The file's size on disk, when it is a regular file.
    public let fileSize: Int?
    /// Whether the file is gzip-compressed.
    public var isCompressed: Bool { gz != nil }

    /// Opens `path`, or standard input for `-`.
    public init(path: String, blockSize: Int = 4 << 20) throws(ReplayError) {
        if path == "-" {
            fd = 0; ownsFD = false
        } else {
            fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw .io("cannot open \(path): \(String(cString: strerror(errno)))") }
            ownsFD = true
        }
        var st = stat()
        fileSize = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? Int(st.st_size) : nil
        var magic: (UInt8, UInt8) = (0, 0)
        if fileSize != nil, pread(fd, &magic, 2, 0) == 2, magic == (0x1F, 0x8B) {
            guard let g = gzdopen(fd, "rb") else {
                close(fd)
                throw .io("cannot open \(path) as gzip")
            }
            gzbuffer(g, 1 << 18)
            gz = g
        }
        capacity = blockSize
        buffer = malloc(capacity)!
    }

    deinit {
        if let gz { gzclose(gz) } else if ownsFD { close(fd) }
        free(buffer)
    }

    /// How far into the file reading is, in bytes on disk (compressed bytes
    /// for a gzip file): with `fileSize`, the progress of a replay.
    public var position: Int {
        if let gz { return Int(gzoffset(gz)) }
        return bytesRead
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
        let n: Int
        if let gz {
            let r = gzread(gz, buffer + end, UInt32(min(capacity - end, 1 << 30)))
            if r < 0 {
                var code: Int32 = 0
                let message = gzerror(gz, &code).map { String(cString: $0) } ?? "error \(code)"
                throw .io("gzip read failed: \(message)")
            }
            n = Int(r)
        } else {
            n = read(fd, buffer + end, capacity - end)
            if n < 0 {
                if errno == EINTR { return }
                throw .io("read failed: \(String(cString: strerror(errno)))")
            }
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
    case kafka(String)
    case redis(String)
    case usage(String)

    public var description: String {
        switch self {
        case .io(let m), .kafka(let m), .redis(let m), .usage(let m): return m
        case .badLabel(let line, let m): return "labels line \(line): \(m)"
        }
    }
}

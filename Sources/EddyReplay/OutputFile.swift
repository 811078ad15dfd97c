import CZlib
import EddyCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Buffered output to a file or standard output. Rows are written as JSON
/// Lines into `writer`; with `csv` set they are converted to CSV rows when
/// flushed. A path ending in `.gz` is written gzip-compressed.
public final class OutputFile {
    let fd: Int32
    let ownsFD: Bool
    var gz: gzFile?
    var closed = false
    public var writer = JSONWriter(capacity: 1 << 20)
    /// Converts the JSON Lines to CSV on the way out when set (before the
    /// first flush).
    public var csv: CSVConverter?
    var csvBytes: [UInt8] = []

    /// Creates (truncates) `path`, or writes standard output for `-`.
    public init(path: String) throws(ReplayError) {
        if path == "-" {
            fd = 1; ownsFD = false
        } else {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw .io("cannot create \(path): \(String(cString: strerror(errno)))") }
            ownsFD = true
            if path.hasSuffix(".gz") {
                guard let g = gzdopen(fd, "wb1") else {
                    Glibc.close(fd)
                    throw .io("cannot open \(path) for gzip output")
                }
                gzbuffer(g, 1 << 18)
                gz = g
            }
        }
    }

    deinit {
        if !closed {
            if let gz { gzclose(gz) } else if ownsFD { Glibc.close(fd) }
        }
    }

    /// Writes the buffer out if it holds more than `threshold` bytes.
    @inline(__always)
    public func flushIfNeeded(threshold: Int = 1 << 20) throws(ReplayError) {
        if writer.bytes.count >= threshold { try flush() }
    }

    public func flush() throws(ReplayError) {
        if let csv {
            csvBytes.removeAll(keepingCapacity: true)
            let consumed = writer.bytes.withUnsafeBytes { csv.convert($0, into: &csvBytes) }
            try writeAll(csvBytes)
            writer.bytes.removeFirst(consumed)
            return
        }
        try writeAll(writer.bytes)
        writer.reset()
    }

    /// Flushes, and finishes the file (the gzip trailer); reports errors
    /// that closing reveals.
    public func close() throws(ReplayError) {
        try flush()
        guard !closed else { return }
        closed = true
        if let gz {
            let r = gzclose(gz)
            if r != Z_OK { throw .io("finishing the gzip output failed (zlib error \(r))") }
        } else if ownsFD {
            if Glibc.close(fd) != 0 { throw .io("closing the output failed: \(String(cString: strerror(errno)))") }
        }
    }

    func writeAll(_ bytes: [UInt8]) throws(ReplayError) {
        var failure: ReplayError?
        bytes.withUnsafeBytes { b in
            do throws(ReplayError) { try writeAll(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    func writeAll(_ buf: UnsafeRawBufferPointer) throws(ReplayError) {
        guard buf.count > 0 else { return }
        if let gz {
            var off = 0
            while off < buf.count {
                let n = gzwrite(gz, buf.baseAddress! + off, UInt32(min(buf.count - off, 1 << 30)))
                if n <= 0 {
                    var code: Int32 = 0
                    let message = gzerror(gz, &code).map { String(cString: $0) } ?? "error \(code)"
                    throw .io("gzip write failed: \(message)")
                }
                off += Int(n)
            }
            return
        }
        var off = 0
        while off < buf.count {
            let n = write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("write failed: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }
}

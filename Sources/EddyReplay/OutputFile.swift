import EddyCore
import Glibc

/// Buffered output to a file or standard output.
public final class OutputFile {
    let fd: Int32
    let ownsFD: Bool
    public var writer = JSONWriter(capacity: 1 << 20)

    /// Creates (truncates) `path`, or writes standard output for `-`.
    public init(path: String) throws(ReplayError) {
        if path == "-" {
            fd = 1; ownsFD = false
        } else {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw .io("cannot create \(path): \(String(cString: strerror(errno)))") }
            ownsFD = true
        }
    }

    deinit { if ownsFD { close(fd) } }

    /// Writes the buffer out if it holds more than `threshold` bytes.
    @inline(__always)
    public func flushIfNeeded(threshold: Int = 1 << 20) throws(ReplayError) {
        if writer.bytes.count >= threshold { try flush() }
    }

    public func flush() throws(ReplayError) {
        var failure: ReplayError?
        writer.bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = .io("write failed: \(String(cString: strerror(errno)))")
                    return
                }
                off += n
            }
        }
        if let failure { throw failure }
        writer.reset()
    }
}

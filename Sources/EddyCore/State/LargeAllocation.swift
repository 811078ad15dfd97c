#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Page-backed memory for the big, randomly accessed state arrays, asking
/// the kernel for transparent huge pages: with 4 KiB pages nearly every key
/// lookup also missed the TLB.
enum LargeAllocation {
    static let hugePage = 2 << 20

    static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let size = roundUp(bytes)
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("out of memory allocating \(size) bytes of state")
        }
        if size >= hugePage { _ = madvise(p, size, 14 /* MADV_HUGEPAGE */) }
        return p
    }

    static func free(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        munmap(p, roundUp(bytes))
    }

    /// Moves `used` bytes to a new allocation of `newBytes`.
    static func grow(_ p: UnsafeMutableRawPointer, from oldBytes: Int, to newBytes: Int, used: Int) -> UnsafeMutableRawPointer {
        let n = allocate(newBytes)
        memcpy(n, p, used)
        free(p, oldBytes)
        return n
    }

    /// Gives the pages wholly inside `from..<to` (byte offsets in `p`) back
    /// to the kernel; they read as zeros when touched again.
    static func release(_ p: UnsafeMutableRawPointer, from: Int, to: Int) {
        let start = (from + 4095) / 4096 * 4096
        let end = to / 4096 * 4096
        if end > start { _ = madvise(p + start, end - start, 4 /* MADV_DONTNEED */) }
    }

    static func roundUp(_ bytes: Int) -> Int {
        let page = bytes >= hugePage ? hugePage : 4096
        return (max(bytes, 1) + page - 1) / page * page
    }
}

//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

/// Helpers for laying out hot shared words on separate cache lines.
///
/// Two threads writing to words that share a cache line make the line bounce
/// between cores ("false sharing"). We separate hot words by
/// ``CacheLine/stride`` bytes: 128 rather than 64 because the adjacent-line
/// prefetcher on x86 pulls lines in 128-byte pairs, and Apple silicon uses
/// 128-byte lines.
@usableFromInline
enum CacheLine {
    /// Distance in bytes between two independently written hot words.
    @usableFromInline
    static let stride = 128

    /// Allocates `count` zero-filled, cache-line-aligned lines of
    /// ``stride`` bytes each.
    ///
    /// The caller owns the memory and must `deallocate()` it.
    @usableFromInline
    static func allocate(count: Int) -> UnsafeMutableRawPointer {
        precondition(count > 0, "must allocate at least one cache line")
        let bytes = count * Self.stride
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.stride)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return memory
    }
}

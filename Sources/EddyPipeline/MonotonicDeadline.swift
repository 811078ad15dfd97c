//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in time on `CLOCK_MONOTONIC`, used to bound blocking waits.
///
/// A deadline is computed once per blocking call so that a call that waits
/// several times (for example a batch push that refills the ring repeatedly)
/// still honours its overall timeout.
@usableFromInline
struct MonotonicDeadline: Sendable {
    /// Nanoseconds since an unspecified monotonic epoch.
    @usableFromInline
    var uptimeNanoseconds: Int64

    @usableFromInline
    init(uptimeNanoseconds: Int64) {
        self.uptimeNanoseconds = uptimeNanoseconds
    }

    /// The current monotonic time.
    @usableFromInline
    static func now() -> MonotonicDeadline {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return MonotonicDeadline(
            uptimeNanoseconds: Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec))
    }

    /// The deadline `timeout` from now, or `nil` (wait forever) when `timeout`
    /// is `nil`. Negative timeouts mean "already expired"; huge ones saturate.
    @usableFromInline
    static func after(_ timeout: Duration?) -> MonotonicDeadline? {
        guard let timeout else { return nil }
        let (seconds, attoseconds) = timeout.components
        let clampedSeconds = max(min(seconds, Int64(Int32.max)), -1)
        let nanoseconds = clampedSeconds * 1_000_000_000 + attoseconds / 1_000_000_000
        return MonotonicDeadline(uptimeNanoseconds: Self.now().uptimeNanoseconds &+ nanoseconds)
    }

    /// Nanoseconds left until the deadline; zero or negative once it passed.
    @usableFromInline
    var remainingNanoseconds: Int64 {
        self.uptimeNanoseconds - Self.now().uptimeNanoseconds
    }

    /// The deadline as an absolute `timespec` on `CLOCK_MONOTONIC`.
    var timespecValue: timespec {
        let clamped = max(self.uptimeNanoseconds, 0)
        return timespec(
            tv_sec: .init(clamped / 1_000_000_000),
            tv_nsec: .init(clamped % 1_000_000_000))
    }
}

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

/// A pthread mutex paired with a condition variable that waits on the
/// monotonic clock.
///
/// This is the slow path of ``Parker``: it is only touched when a thread is
/// about to sleep or has to wake a sleeper.
//
// `@unchecked Sendable`: the mutex and condition variable live in stable heap
// memory owned by this object and are designed for concurrent use; the
// pointers themselves are immutable.
@usableFromInline
final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    @usableFromInline
    init() {
        self.mutex = .allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        self.condition = .allocate(capacity: 1)
        self.condition.initialize(to: pthread_cond_t())

        var mutexError = pthread_mutex_init(self.mutex, nil)
        precondition(mutexError == 0, "pthread_mutex_init failed: \(mutexError)")

        #if os(Linux) || os(Android) || os(FreeBSD)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        mutexError = pthread_cond_init(self.condition, &attributes)
        pthread_condattr_destroy(&attributes)
        #else
        mutexError = pthread_cond_init(self.condition, nil)
        #endif
        precondition(mutexError == 0, "pthread_cond_init failed: \(mutexError)")
    }

    deinit {
        pthread_cond_destroy(self.condition)
        pthread_mutex_destroy(self.mutex)
        self.condition.deinitialize(count: 1)
        self.condition.deallocate()
        self.mutex.deinitialize(count: 1)
        self.mutex.deallocate()
    }

    @usableFromInline
    func lock() {
        let error = pthread_mutex_lock(self.mutex)
        precondition(error == 0, "pthread_mutex_lock failed: \(error)")
    }

    @usableFromInline
    func unlock() {
        let error = pthread_mutex_unlock(self.mutex)
        precondition(error == 0, "pthread_mutex_unlock failed: \(error)")
    }

    /// Wakes one thread blocked in ``wait(until:)``.
    @usableFromInline
    func signal() {
        pthread_cond_signal(self.condition)
    }

    /// Wakes all threads blocked in ``wait(until:)``.
    @usableFromInline
    func broadcast() {
        pthread_cond_broadcast(self.condition)
    }

    /// Atomically releases the (held) mutex and sleeps until signalled, a
    /// spurious wake-up, or `deadline`. The mutex is held again on return.
    ///
    /// - Returns: `false` if the deadline has passed, `true` otherwise.
    @usableFromInline
    func wait(until deadline: MonotonicDeadline?) -> Bool {
        guard let deadline else {
            let error = pthread_cond_wait(self.condition, self.mutex)
            precondition(error == 0, "pthread_cond_wait failed: \(error)")
            return true
        }
        #if canImport(Darwin)
        let remaining = deadline.remainingNanoseconds
        guard remaining > 0 else { return false }
        var relative = timespec(
            tv_sec: .init(remaining / 1_000_000_000), tv_nsec: .init(remaining % 1_000_000_000))
        let error = pthread_cond_timedwait_relative_np(self.condition, self.mutex, &relative)
        #else
        var absolute = deadline.timespecValue
        let error = pthread_cond_timedwait(self.condition, self.mutex, &absolute)
        #endif
        precondition(error == 0 || error == ETIMEDOUT, "pthread_cond_timedwait failed: \(error)")
        return error == 0 || deadline.remainingNanoseconds > 0
    }

    /// Runs `body` with the mutex held.
    @usableFromInline
    func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        self.lock()
        defer { self.unlock() }
        return try body()
    }
}

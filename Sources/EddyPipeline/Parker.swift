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

import Atomics

/// Lets one thread sleep until a condition it cares about becomes true,
/// without putting a lock on the path of the threads that make it true.
///
/// A `Parker` has exactly **one waiter** at a time (the thread calling
/// ``park(timeout:until:)``) and any number of **notifiers** (threads calling
/// ``unpark()`` after changing shared state).
///
/// ### Protocol
///
/// Waiter, in ``park(timeout:until:)``:
/// 1. spin a little, re-checking the condition (cheap when the other side is
///    about to deliver);
/// 2. take the mutex, set the `waiting` flag, issue a sequentially consistent
///    fence, and **re-check** the condition;
/// 3. only if it is still false, sleep on the condition variable (which
///    atomically releases the mutex), with an optional deadline;
/// 4. on wake-up loop to step 2; clear the flag before returning.
///
/// Notifier, in ``unpark()``, after publishing its change (e.g. a ring index
/// stored with release ordering):
/// 1. issue a sequentially consistent fence, then read the `waiting` flag;
/// 2. only if it is set, clear it, take and release the mutex, then signal.
///
/// The two fences order "publish, then read flag" against "set flag, then read
/// state": at least one side sees the other, so either the waiter's re-check
/// observes the change or the notifier observes the flag. A notifier that sees
/// the flag takes the mutex, which the waiter holds from setting the flag
/// until it is inside the wait, so the signal cannot fall between the
/// re-check and the sleep. (A signal that arrives late only causes a
/// spurious wake-up, after which the waiter re-checks and sleeps again.) Hence no lost wake-ups, and the fast path — the
/// waiter is awake — costs the notifier one fence and one load, no lock.
///
/// Deadlines let a stage loop combine parking with periodic work (e.g. a
/// 5 ms flush tick): `park(timeout: .milliseconds(5)) { !ring.isEmpty }`.
//
// `@unchecked Sendable`: all mutable state is either an atomic (`waiting`) or
// protected by `lock`; the stored properties themselves are immutable.
public final class Parker: @unchecked Sendable {
    /// Set by the waiter (while holding `lock`) when it is about to sleep.
    /// Lives on its own cache line: it is read on every notify.
    @usableFromInline
    let waiting: UnsafeAtomic<Bool>

    @usableFromInline
    let lock: ConditionLock

    /// The cache line holding `waiting`.
    private let waitingLine: UnsafeMutableRawPointer

    /// How many times ``park(timeout:until:)`` re-checks its condition in a
    /// busy loop before yielding.
    public let spinCount: Int

    /// How many times ``park(timeout:until:)`` yields the CPU (re-checking
    /// after each yield) before announcing that it is going to sleep.
    public let yieldCount: Int

    /// Creates a parker.
    ///
    /// Before sleeping, a waiter busy-checks its condition `spinCount` times,
    /// then yields the CPU `yieldCount` times. Both avoid a sleep/wake round
    /// trip (several microseconds) when the other side is about to deliver;
    /// yielding also lets that other side run on an oversubscribed machine.
    ///
    /// - Parameters:
    ///   - spinCount: Busy condition checks before yielding.
    ///   - yieldCount: `sched_yield` rounds before sleeping.
    public init(spinCount: Int = 256, yieldCount: Int = 8) {
        precondition(spinCount >= 0 && yieldCount >= 0, "spin and yield counts must not be negative")
        let line = CacheLine.allocate(count: 1)
        self.waitingLine = line
        let flag = line.bindMemory(to: Bool.AtomicRepresentation.self, capacity: 1)
        flag.initialize(to: .init(false))
        self.waiting = UnsafeAtomic(at: flag)
        self.lock = ConditionLock()
        self.spinCount = spinCount
        self.yieldCount = yieldCount
    }

    deinit {
        // `Bool.AtomicRepresentation` is trivial: no deinitialization needed.
        self.waitingLine.deallocate()
    }

    /// Blocks the calling thread until `condition` returns `true` or `timeout`
    /// elapses.
    ///
    /// Only one thread may park on a given `Parker` at a time. `condition` is
    /// evaluated on the calling thread, possibly many times; it must read the
    /// state that notifiers change *before* calling ``unpark()``.
    ///
    /// - Parameters:
    ///   - timeout: The longest time to sleep, or `nil` to wait indefinitely.
    ///     Counted from the end of the spin/yield phase, so the total wait may
    ///     exceed it by that (microsecond-scale) phase.
    ///   - condition: What the caller is waiting for.
    /// - Returns: `true` if `condition` held, `false` if the timeout expired first.
    @inlinable
    public func park(timeout: Duration?, until condition: () -> Bool) -> Bool {
        var spins = 0
        while spins < self.spinCount {
            if condition() {
                return true
            }
            spins &+= 1
        }
        return self.yieldThenPark(timeout: timeout, until: condition)
    }

    /// The part of ``park(timeout:until:)`` after busy spinning.
    @usableFromInline
    func yieldThenPark(timeout: Duration?, until condition: () -> Bool) -> Bool {
        for _ in 0..<self.yieldCount {
            if condition() {
                return true
            }
            sched_yield()
        }
        return self.parkSlowPath(deadline: MonotonicDeadline.after(timeout), until: condition)
    }

    /// Like ``park(timeout:until:)`` but with an absolute deadline, without
    /// spinning first.
    @usableFromInline
    func parkSlowPath(deadline: MonotonicDeadline?, until condition: () -> Bool) -> Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        while true {
            self.waiting.store(true, ordering: .relaxed)
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            if condition() {
                self.waiting.store(false, ordering: .relaxed)
                return true
            }
            if !self.lock.wait(until: deadline) {
                self.waiting.store(false, ordering: .relaxed)
                return condition()
            }
        }
    }

    /// Wakes the waiter if it announced that it is going to sleep.
    ///
    /// Call this *after* publishing the change the waiter is waiting for. When
    /// nobody is parked this costs a fence and a load and takes no lock.
    @inlinable
    public func unpark() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if self.waiting.load(ordering: .relaxed) {
            self.wakeSlowPath()
        }
    }

    @usableFromInline
    func wakeSlowPath() {
        // Clearing the flag stops the notifiers that follow from taking the
        // lock again while the waiter is still waking up; the waiter sets it
        // again if it has to go back to sleep.
        guard self.waiting.exchange(false, ordering: .relaxed) else { return }
        // Taking the mutex orders us after the waiter's re-check: it is now
        // inside the wait (or already gone). Signal after unlocking so the
        // woken waiter does not immediately block on the mutex we hold.
        self.lock.lock()
        self.lock.unlock()
        self.lock.signal()
    }
}

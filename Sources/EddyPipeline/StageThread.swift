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

/// A named, dedicated OS thread running one pipeline stage (ingest, an
/// operator shard, a Redis writer, ...).
///
/// The thread starts immediately and runs `body` once; `body` is expected to
/// loop until its ``StopToken`` says stop:
///
/// ```swift
/// let stage = StageThread(name: "shard-0") { stop in
///     while !stop.isStopRequested {
///         let n = input.popBlocking(into: batch, timeout: .milliseconds(5))
///         // process n elements, flush on tick ...
///     }
/// }
/// // ...
/// stage.requestStop()
/// stage.join()
/// ```
///
/// Always ``join()`` a stage before dropping it. Dropping an unjoined stage
/// requests a stop and detaches the thread, which then finishes on its own.
//
// `@unchecked Sendable`: `handle` is immutable after `init`; the only mutable
// state (`isReaped` and the shared `StageThreadState`) is guarded by
// `state.lock`.
public final class StageThread: @unchecked Sendable {
    /// The name given at creation (the OS name may be truncated to 15 bytes).
    public let name: String

    /// The token passed to the body; ``requestStop()`` sets it.
    public let stopToken: StopToken

    private let handle: pthread_t
    private let state: StageThreadState
    /// Whether `pthread_join` has been called. Guarded by `state.lock`.
    private var isReaped = false

    /// Starts a thread named `name` that runs `body` once.
    ///
    /// - Parameters:
    ///   - name: Thread name, for debuggers and `top -H` (truncated to 15 bytes).
    ///   - body: The stage loop. It is *sent* to the new thread: it may own
    ///     non-`Sendable` state, which from then on belongs to that thread.
    public init(name: String, body: sending @escaping (StopToken) -> Void) {
        self.name = name
        let stopToken = StopToken()
        self.stopToken = stopToken
        let state = StageThreadState()
        self.state = state
        let start = StageThreadStart(name: name, body: body, stopToken: stopToken, state: state)
        self.handle = start.spawn()
    }

    /// Starts a thread named `name` that calls `iteration` repeatedly until a
    /// stop is requested.
    ///
    /// `iteration` should return periodically (for example after a blocking
    /// call with a timeout) so the stop request is noticed.
    public static func repeating(name: String, _ iteration: sending @escaping () -> Void) -> StageThread {
        StageThread(name: name) { stop in
            while !stop.isStopRequested {
                iteration()
            }
        }
    }

    deinit {
        if !self.isReaped {
            self.stopToken.requestStop()
            pthread_detach(self.handle)
        }
    }

    /// Whether the body has returned.
    public var isFinished: Bool {
        self.state.lock.withLock { self.state.isFinished }
    }

    /// Asks the body to stop (see ``StopToken``). Does not wait; use
    /// ``join()`` for that.
    public func requestStop() {
        self.stopToken.requestStop()
    }

    /// Waits until the body has returned and the thread has exited.
    ///
    /// Safe to call several times and from several threads; must not be
    /// called from the stage thread itself.
    public func join() {
        let joined = self.join(timeout: nil)
        assert(joined, "an unbounded join cannot time out")
    }

    /// Waits at most `timeout` for the body to return, then reaps the thread.
    ///
    /// - Parameter timeout: The longest time to wait, or `nil` for no limit.
    /// - Returns: `true` if the thread finished; `false` if it is still running
    ///   when the timeout expires.
    @discardableResult
    public func join(timeout: Duration?) -> Bool {
        precondition(pthread_equal(pthread_self(), self.handle) == 0, "a stage thread cannot join itself")
        let deadline = MonotonicDeadline.after(timeout)
        return self.state.lock.withLock {
            while !self.state.isFinished {
                guard self.state.lock.wait(until: deadline) else { break }
            }
            guard self.state.isFinished else { return false }
            if !self.isReaped {
                // The body has returned; the thread only has to unwind, so
                // holding the lock here is brief and cannot deadlock.
                let error = pthread_join(self.handle, nil)
                precondition(error == 0, "pthread_join failed: \(error)")
                self.isReaped = true
            }
            return true
        }
    }
}

/// Completion state shared by a ``StageThread`` and its running thread.
//
// `@unchecked Sendable`: `isFinished` is guarded by `lock`.
final class StageThreadState: @unchecked Sendable {
    let lock = ConditionLock()
    /// Set once the body returned. Guarded by `lock`.
    var isFinished = false

    func markFinished() {
        self.lock.withLock {
            self.isFinished = true
            self.lock.broadcast()
        }
    }
}

/// Everything the new thread needs, passed through `pthread_create`'s
/// context pointer.
//
// `@unchecked Sendable`: `body` was received as `sending`, so no other thread
// holds on to it; it is only ever called on the new thread.
private final class StageThreadStart: @unchecked Sendable {
    let name: String
    let body: (StopToken) -> Void
    let stopToken: StopToken
    let state: StageThreadState

    init(name: String, body: @escaping (StopToken) -> Void, stopToken: StopToken, state: StageThreadState) {
        self.name = name
        self.body = body
        self.stopToken = stopToken
        self.state = state
    }

    /// Creates the thread; it takes over one retain of `self`.
    func spawn() -> pthread_t {
        let context = Unmanaged.passRetained(self).toOpaque()
        #if canImport(Darwin)
        var handle: pthread_t?
        #else
        var handle = pthread_t()
        #endif
        let error = pthread_create(&handle, nil, stageThreadEntry, context)
        precondition(error == 0, "pthread_create failed: \(error)")
        #if canImport(Darwin)
        return handle!
        #else
        return handle
        #endif
    }

    func run() {
        ThreadName.setCurrent(self.name)
        self.body(self.stopToken)
        self.state.markFinished()
    }
}

#if canImport(Darwin)
private func stageThreadEntry(_ context: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    Unmanaged<StageThreadStart>.fromOpaque(context).takeRetainedValue().run()
    return nil
}
#else
private func stageThreadEntry(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    Unmanaged<StageThreadStart>.fromOpaque(context!).takeRetainedValue().run()
    return nil
}
#endif

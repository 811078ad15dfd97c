/// What became of one event in a `LookaheadApplier`.
public enum ApplyOutcome: Equatable, Sendable {
    /// Applied to this slot.
    case applied(Int32)
    /// Its decoder refused it.
    case invalid(RejectReason)
    /// Older than its key time minus the allowed lateness; not applied.
    case late(Int32)
    /// `ApplyHooks.admit` refused it (the worker: a duplicate that the state
    /// loaded from Redis already holds).
    case skipped(Int32)
    /// Its key is not in memory and the hooks do not create keys: apply it
    /// again (`applyNow`) once the key is loaded.
    case deferred
}

/// What the users of a `LookaheadApplier` do differently, called for each
/// event in arrival order. A generic parameter, not an existential: each
/// user's hooks are specialized and inlined into its loop.
public protocol ApplyHooks {
    /// What the caller keeps with each event in flight (its bytes, offset…).
    associatedtype Event

    /// Whether an event whose key is not in memory creates the key empty
    /// (replay) or is `.deferred` until the caller has loaded it (the worker).
    var createsKeys: Bool { get }

    /// Whether to apply the event to `slot`, asked before the lateness
    /// check; false makes it `.skipped`. By default, true.
    mutating func admit(_ event: Event, slot: Int32, decoded: EventDecoder) -> Bool

    /// Called right before the event is applied: reads of `slot` here see
    /// the state before the event (replay's point-in-time rows). By default,
    /// nothing.
    mutating func willApply(_ event: Event, slot: Int32, decoded: EventDecoder)

    /// Every event's outcome, once it has been applied (or not).
    mutating func finished(_ event: Event, _ outcome: ApplyOutcome, decoded: EventDecoder)
}

extension ApplyHooks {
    @inlinable @inline(__always)
    public func admit(_ event: Event, slot: Int32, decoded: EventDecoder) -> Bool { true }

    @inlinable @inline(__always)
    public func willApply(_ event: Event, slot: Int32, decoded: EventDecoder) {}
}

/// Applies events to a `FeatureEngine` in arrival order, decoding each
/// `depth - 1` events before it is applied. Key lookups are memory-latency
/// bound (the state of 100k keys is tens of MB), so each new event starts
/// one load for each event in flight: its own index entry, the previous
/// event's slot record, the one before's state blob; the apply then finds
/// all three in cache. (Without it the key lookup was a quarter of the
/// worker shard's time; with it the shard's CPU per 1M events fell from
/// 1.70 to 1.44 s.) Replay and the worker's shard both apply through it.
///
/// Pure: no I/O, clocks or threads. Use from one thread.
public final class LookaheadApplier<Event> {
    /// Events in flight, the one being applied included.
    public static var depth: Int { 4 }

    public let engine: FeatureEngine

    /// One event in flight: its own decoder (so several can be decoded at
    /// once), what decoding it said, and the caller's `Event`.
    @usableFromInline
    struct InFlight {
        /// Kept alive by `decoders`. Unmanaged: used through
        /// `_withUnsafeGuaranteedRef`, handing it on costs no
        /// retain/release per event.
        @usableFromInline let decoder: Unmanaged<EventDecoder>
        @usableFromInline var rejected: RejectReason?
        @usableFromInline var event: Event

        @inlinable
        init(decoder: Unmanaged<EventDecoder>, event: Event) {
            self.decoder = decoder
            self.rejected = nil
            self.event = event
        }
    }

    @usableFromInline let decoders: [EventDecoder]
    @usableFromInline let ring: UnsafeMutablePointer<InFlight>
    /// Where the next event goes.
    @usableFromInline var head = 0
    /// Events decoded and not yet applied.
    @usableFromInline var pending = 0

    /// - Parameter event: the initial `Event` of each place in the ring.
    public init(engine: FeatureEngine, event: () -> Event) {
        self.engine = engine
        let decoders = (0..<Self.depth).map { _ in engine.makeDecoder() }
        self.decoders = decoders
        ring = .allocate(capacity: Self.depth)
        for i in 0..<Self.depth { (ring + i).initialize(to: InFlight(decoder: .passUnretained(decoders[i]), event: event())) }
    }

    deinit {
        ring.deinitialize(count: Self.depth)
        ring.deallocate()
    }

    /// Events decoded and not yet applied.
    public var inFlight: Int { pending }

    /// Every place's `Event`, e.g. to free what the caller keeps in them.
    public func forEachEvent(_ body: (inout Event) -> Void) {
        for i in 0..<Self.depth { body(&ring[i].event) }
    }

    /// Takes the next event: `decode` fills a free place's `Event` and
    /// decodes the event into the decoder it is given, returning what the
    /// decoder said. Then starts one memory load for each event in flight
    /// and applies the oldest once `depth` are in flight.
    ///
    /// The decoded bytes must stay where they are until the event is
    /// applied (the decoder's key points into them): replay copies each
    /// line into its `Event`, the shard's batch holds still.
    @inlinable @inline(__always)
    public func push<Hooks: ApplyHooks>(
        _ hooks: inout Hooks, decode: (inout Event, EventDecoder) -> RejectReason?
    ) where Hooks.Event == Event {
        let depth = Self.depth
        let engine = self.engine
        let e = ring + head
        let rejected = e.pointee.decoder._withUnsafeGuaranteedRef { decode(&e.pointee.event, $0) }
        e.pointee.rejected = rejected
        if rejected == nil { e.pointee.decoder._withUnsafeGuaranteedRef { engine.prefetchIndex(for: $0) } }
        if pending >= 1 {
            let p = ring + (head + depth - 1) % depth
            if p.pointee.rejected == nil { p.pointee.decoder._withUnsafeGuaranteedRef { engine.prefetchSlot(for: $0) } }
        }
        if pending >= 2 {
            let p = ring + (head + depth - 2) % depth
            if p.pointee.rejected == nil { p.pointee.decoder._withUnsafeGuaranteedRef { engine.prefetchState(for: $0) } }
        }
        head = (head + 1) % depth
        pending += 1
        if pending == depth {
            complete(ring + head, &hooks)
            pending -= 1
        }
    }

    /// Applies the events still in flight.
    @inlinable
    public func drain<Hooks: ApplyHooks>(_ hooks: inout Hooks) where Hooks.Event == Event {
        while pending > 0 {
            complete(ring + (head + Self.depth - pending) % Self.depth, &hooks)
            pending -= 1
        }
    }

    /// Decodes (`decode`, into the engine's own decoder) and applies one
    /// event at once, without lookahead: e.g. an event deferred until its
    /// key was loaded. Events in flight stay in flight.
    @inlinable @inline(__always)
    public func applyNow<Hooks: ApplyHooks>(
        _ event: Event, _ hooks: inout Hooks, decode: (EventDecoder) -> RejectReason?
    ) where Hooks.Event == Event {
        let d = engine.decoder
        apply(event, decoded: d, rejected: decode(d), &hooks)
    }

    @inlinable @inline(__always)
    func complete<Hooks: ApplyHooks>(_ p: UnsafeMutablePointer<InFlight>, _ hooks: inout Hooks)
    where Hooks.Event == Event {
        let rejected = p.pointee.rejected
        p.pointee.decoder._withUnsafeGuaranteedRef { apply(p.pointee.event, decoded: $0, rejected: rejected, &hooks) }
    }

    /// The one apply step: lookup, the hooks' admission, lateness, apply.
    @inlinable @inline(__always)
    func apply<Hooks: ApplyHooks>(
        _ event: Event, decoded d: EventDecoder, rejected: RejectReason?, _ hooks: inout Hooks
    ) where Hooks.Event == Event {
        if let reason = rejected {
            hooks.finished(event, .invalid(reason), decoded: d)
            return
        }
        let slot = engine.slot(for: d, create: hooks.createsKeys)
        if slot < 0 {
            hooks.finished(event, .deferred, decoded: d)
            return
        }
        if !hooks.admit(event, slot: slot, decoded: d) {
            hooks.finished(event, .skipped(slot), decoded: d)
            return
        }
        if engine.isLate(slot, ts: d.timestamp) {
            hooks.finished(event, .late(slot), decoded: d)
            return
        }
        hooks.willApply(event, slot: slot, decoded: d)
        engine.apply(slot, from: d)
        hooks.finished(event, .applied(slot), decoded: d)
    }
}

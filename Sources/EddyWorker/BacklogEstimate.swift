/// How far behind Kafka the consumer is, for the shard's catch-up mode
/// (`ShardStage.updateFlushInterval`), from two sources that disagree:
/// - the lag sample (high watermarks minus positions, every 100 ms), which
///   can stay above 0 for a while after a drain ends;
/// - polls that return nothing, which also happen while far behind when
///   the broker is slow to answer a fetch (found at 10M users: a backlog of
///   2.7M messages read "0" between fetches, and the worker switched catch-up
///   on and off several times a second, flushing every 5 ms in between).
/// So the backlog counts as gone only after polls have returned nothing for
/// `quietPeriod`; until then the last lag sample stands.
/// Plain logic, no I/O or clock of its own: the ingest passes the time in.
struct BacklogEstimate {
    /// Empty polls for this long mean caught up, whatever the lag sample says.
    var quietPeriod: Duration = .milliseconds(500)
    private(set) var lagSample = 0
    private var emptySince: ContinuousClock.Instant?
    private var quiet = false

    /// A lag snapshot's sum over the assigned partitions.
    mutating func sampled(lag: Int) { lagSample = lag }

    /// A poll's result: `empty` when it returned nothing and nothing was
    /// waiting in the batch being filled.
    mutating func polled(empty: Bool, at now: ContinuousClock.Instant) {
        guard empty else {
            emptySince = nil
            quiet = false
            return
        }
        if let since = emptySince { quiet = now - since >= quietPeriod } else { emptySince = now }
    }

    /// The backlog to publish; `held`: messages of partitions held for a
    /// later catch-up wave (not fetched, so never polled).
    func backlog(held: Int) -> Int { quiet ? held : lagSample }
}

import Atomics
import EddyCore
import EddyRedis
import EddyStore
import Foundation
import NIOCore
import NIOPosix

/// Why a read failed, as the HTTP layer reports it.
public enum ReadFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Redis cannot be reached (503).
    case unavailable(String)
    /// Redis answered with an error for a key, or something unexpected (500).
    case failed(String)

    public var description: String {
        switch self {
        case .unavailable(let m), .failed(let m): return m
        }
    }
}

/// What a lane needs to read one topology's features.
struct TopologyReader: Sendable {
    let topology: Topology
    let library: FunctionLibrary
    let prefix: String
    /// Set once a lane has checked (or loaded) this library on the server:
    /// event-loop reads wait for it.
    let libraryChecked = ManagedAtomic<Bool>(false)

    init(_ t: Topology) {
        topology = t
        library = FunctionLibrary(topology: t)
        prefix = t.sink.keyPrefix
    }
}

/// Feature reads for request handlers, batched onto a few Redis connections.
///
/// Each lane is a thread owning one blocking hiredis connection (on a Redis
/// Cluster: one `RedisClusterClient`, a connection per master, each `FCALL`
/// routed to its key's master and every master's pipeline sent at once). A request
/// adds its keys to a lane's queue (round robin) and suspends; the lane
/// takes everything queued, sends one pipeline of `FCALL`s for all of it
/// (up to 1024 keys; a larger request alone, 512 keys per pipeline), and
/// resumes each request with its replies. Under load a batch grows while
/// the previous one is in flight, so Redis sees pipelines rather than
/// single calls, and no Swift concurrency thread ever blocks on a socket.
/// A request made on a NIO event loop (`eddy serve` runs Swift concurrency
/// on the event loops) is resumed on that loop, with one wakeup per loop
/// per batch, so its reply is written without another thread hop. On a
/// single server, single-key GETs never get here unless something was
/// unusual: `FeatureGetFastPath` reads them over the event loop's own
/// connection (`loopReads`) and hands the router only what it could not
/// answer, which then goes straight to a lane.
///
/// Library installation is `FeatureClient`'s: on first use per connection
/// (every master of a cluster), again on a server that answers that the
/// function is missing (a restarted or flushed Redis, a new master), and
/// everywhere when Redis answers `EDDYSTATE` while another library version is
/// loaded. A connection that fails is dropped and the batch retried once on
/// a new one (reads are idempotent); when Redis cannot be reached the batch
/// fails with `.unavailable` and the next batch connects again, so the
/// server recovers without a restart. When connecting times out (rather
/// than being refused), batches fail fast for `cooldown` first.
public final class RedisLanes: Sendable {
    /// The server or cluster read from.
    public let target: RedisTarget
    let lanes: [Lane]
    let next = ManagedAtomic<Int>(0)
    let pingCache = Locked<(at: ContinuousClock.Instant, ok: Bool, detail: String)?>(nil)
    /// A connection per event loop for `FeatureGetFastPath` (single servers, when enabled).
    let loopReads: LoopReads?

    /// `readOnEventLoops`: each event loop of
    /// `MultiThreadedEventLoopGroup.singleton` (Hummingbird's) gets its own
    /// connection, for the single-key GETs the server answers in the channel
    /// pipeline (single servers only; see `LoopReads`, `FeatureGetFastPath`).
    public init(target: RedisTarget, lanes: Int = 2, options: RedisConnection.Options = RedisLanes.defaultOptions(),
                cooldown: Duration = .milliseconds(250), readOnEventLoops: Bool = false) {
        self.target = target
        self.lanes = (0..<max(lanes, 1)).map { i in
            Lane(target: target, options: options, cooldown: cooldown, name: "eddy-redis-\(i)")
        }
        // Not over TLS: the event-loop connections are plaintext NIO channels; a `rediss://`
        // server is read through the lanes, whose connections run TLS (`CEddyRedisTLS`).
        if readOnEventLoops, case .single(let url) = target, url.tls == nil, options.onConnect == nil {
            loopReads = LoopReads(
                settings: .init(url: url, connectTimeout: options.connectTimeout,
                                commandTimeout: options.commandTimeout ?? .seconds(2), clientName: options.clientName,
                                cooldown: max(cooldown, .seconds(1))),
                group: .singleton)
        } else {
            loopReads = nil
        }
    }

    /// Lanes reading from one server.
    public convenience init(url: RedisURL, lanes: Int = 2, options: RedisConnection.Options = RedisLanes.defaultOptions(),
                            cooldown: Duration = .milliseconds(250), readOnEventLoops: Bool = false) {
        self.init(target: .single(url), lanes: lanes, options: options, cooldown: cooldown,
                  readOnEventLoops: readOnEventLoops)
    }

    /// Short timeouts: a lane blocks for at most these.
    public static func defaultOptions(clientName: String = "eddy-serve") -> RedisConnection.Options {
        .init(connectTimeout: .milliseconds(500), commandTimeout: .seconds(2), clientName: clientName)
    }

    /// The features of `keys` at `at` (nil: Redis's clock), in order; nil
    /// for entities Redis does not hold.
    func read(_ reader: TopologyReader, keys: [String], at: Int64?) async -> Result<[[UInt8]?], ReadFailure> {
        guard !keys.isEmpty else { return .success([]) }
        let eventLoop = MultiThreadedEventLoopGroup.currentEventLoop
        let lane = lanes[next.loadThenWrappingIncrement(ordering: .relaxed) % lanes.count]
        return await withCheckedContinuation { continuation in
            lane.submit(.read(Lane.Read(reader: reader, keys: keys, at: at, resumeOn: eventLoop, done: continuation)))
        }
    }

    /// Whether Redis answers `PING` (through a lane), checked at most once per `maxAge`.
    public func ping(maxAge: Duration = .seconds(1)) async -> (ok: Bool, detail: String) {
        if let cached = pingCache.get(), ContinuousClock.now - cached.at < maxAge { return (cached.ok, cached.detail) }
        let lane = lanes[next.loadThenWrappingIncrement(ordering: .relaxed) % lanes.count]
        let result = await withCheckedContinuation { continuation in lane.submit(.ping(continuation)) }
        pingCache.set((.now, result.ok, result.detail))
        return result
    }

    /// Stops the lane threads once their queues are empty.
    public func shutdown() {
        for lane in lanes { lane.submit(.stop) }
    }
}

/// One connection and the thread that uses it.
final class Lane: @unchecked Sendable {
    struct Read {
        let reader: TopologyReader
        let keys: [String]
        let at: Int64?
        /// The event loop the request waits on, if any: it is resumed there.
        let resumeOn: (any EventLoop)?
        let done: CheckedContinuation<Result<[[UInt8]?], ReadFailure>, Never>
    }

    enum Job {
        case read(Read)
        case ping(CheckedContinuation<(ok: Bool, detail: String), Never>)
        case stop
    }

    static let batchKeys = 1024
    static let pipelineKeys = 512

    let target: RedisTarget
    let options: RedisConnection.Options
    let cooldown: Duration
    // Shared with submitters, under `condition`.
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var threadStarted = false
    private let name: String
    // The lane thread's own.
    private var connection: RedisClient?
    /// Libraries (name -> version) this connection has checked or loaded.
    private var installed: [String: String] = [:]
    private var failFastUntil: ContinuousClock.Instant?
    private var lastFailure = ""

    init(target: RedisTarget, options: RedisConnection.Options, cooldown: Duration, name: String) {
        self.target = target
        self.options = options
        self.cooldown = cooldown
        self.name = name
    }

    func submit(_ job: Job) {
        condition.lock()
        queue.append(job)
        if !threadStarted {
            threadStarted = true
            let thread = Thread { [self] in run() }
            thread.name = name
            thread.start()
        }
        condition.unlock()
        // After unlocking, so the woken lane does not block on the lock.
        condition.signal()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let jobs = queue
            queue.removeAll(keepingCapacity: true)
            condition.unlock()

            var reads: [Read] = []
            var stop = false
            for job in jobs {
                switch job {
                case .read(let r): reads.append(r)
                case .ping(let done): done.resume(returning: ping())
                case .stop: stop = true
                }
            }
            process(reads)
            if stop {
                connection?.close()
                condition.lock()
                threadStarted = false
                let more = !queue.isEmpty
                condition.unlock()
                if !more { return }
            }
        }
    }

    // MARK: Reads

    /// Reads in batches of at most `batchKeys` keys; a larger read alone.
    private func process(_ reads: [Read]) {
        var batch: [Read] = []
        var keys = 0
        for r in reads {
            if r.keys.count > Self.batchKeys {
                finish([r], [readLarge(r)])
                continue
            }
            if keys + r.keys.count > Self.batchKeys {
                finish(batch, execute(batch))
                batch.removeAll(keepingCapacity: true)
                keys = 0
            }
            batch.append(r)
            keys += r.keys.count
        }
        if !batch.isEmpty { finish(batch, execute(batch)) }
    }

    /// Resumes each read with its result: on its event loop (one task per
    /// loop for the whole batch), else here.
    private func finish(_ batch: [Read], _ results: [Result<[[UInt8]?], ReadFailure>]) {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, resumes: [Resume])] = [:]
        for (r, result) in zip(batch, results) {
            guard let loop = r.resumeOn else {
                r.done.resume(returning: result)
                continue
            }
            byLoop[ObjectIdentifier(loop), default: (loop, [])].resumes.append(Resume(done: r.done, result: result))
        }
        for (loop, resumes) in byLoop.values {
            loop.execute { for r in resumes { r.done.resume(returning: r.result) } }
        }
    }

    struct Resume: Sendable {
        let done: CheckedContinuation<Result<[[UInt8]?], ReadFailure>, Never>
        let result: Result<[[UInt8]?], ReadFailure>
    }

    private func readLarge(_ r: Read) -> Result<[[UInt8]?], ReadFailure> {
        var all: [[UInt8]?] = []
        all.reserveCapacity(r.keys.count)
        var start = 0
        while start < r.keys.count {
            let end = min(start + Self.pipelineKeys, r.keys.count)
            let part = Read(reader: r.reader, keys: Array(r.keys[start..<end]), at: r.at, resumeOn: nil, done: r.done)
            switch execute([part])[0] {
            case .success(let objects): all += objects
            case .failure(let f): return .failure(f)
            }
            start = end
        }
        return .success(all)
    }

    /// One pipeline for every key of `batch`; one result per read.
    private func execute(_ batch: [Read]) -> [Result<[[UInt8]?], ReadFailure>] {
        var retried = false
        var reinstalled = false
        while true {
            let hadConnection = connection != nil
            let c: RedisClient
            switch connect() {
            case .failure(let f): return batch.map { _ in .failure(f) }
            case .success(let connected): c = connected
            }
            do {
                for r in batch {
                    try ensureInstalled(r.reader.library, on: c, force: false)
                    if !r.reader.libraryChecked.load(ordering: .relaxed) { r.reader.libraryChecked.store(true, ordering: .relaxed) }
                }
                let replies = try Self.call(batch, on: c)
                if !reinstalled, let stale = try staleLibraries(batch, replies, on: c), !stale.isEmpty {
                    for library in stale { try ensureInstalled(library, on: c, force: true) }
                    reinstalled = true
                    continue
                }
                var results: [Result<[[UInt8]?], ReadFailure>] = []
                results.reserveCapacity(batch.count)
                var i = 0
                for r in batch {
                    results.append(Self.decode(replies[i..<(i + r.keys.count)], keys: r.keys))
                    i += r.keys.count
                }
                return results
            } catch where error.isConnectionError || !c.isConnected {
                drop()
                if hadConnection && !retried {
                    // Probably closed while idle (a Redis restart): once more on a new one.
                    retried = true
                    continue
                }
                return batch.map { _ in .failure(.unavailable("Redis at \(target) failed: \(error)")) }
            } catch {
                if case .single(let single) = c, single.pendingReplyCount != 0 { drop() }
                return batch.map { _ in .failure(.failed("\(error)")) }
            }
        }
    }

    /// One pipeline of `FCALL`s per run of reads of the same library (the
    /// whole batch when one topology is served); a server that answers
    /// "function not found" gets the library and its calls again.
    private static func call(_ batch: [Read], on c: RedisClient) throws(RedisError) -> [RedisReply] {
        var replies: [RedisReply] = []
        var start = 0
        while start < batch.count {
            let library = batch[start].reader.library
            var end = start + 1
            while end < batch.count, batch[end].reader.library.functionName == library.functionName,
                  batch[end].reader.library.version == library.version { end += 1 }
            var keys: [(read: Int, key: Int)] = []
            for r in start..<end { for k in batch[r].keys.indices { keys.append((r, k)) } }
            replies += try c.fcallPipeline(
                library.functionName, count: keys.count, isMissing: FunctionLibrary.isMissingFunction,
                reload: { (connection: RedisConnection) throws(RedisError) in try library.install(on: connection, force: true) }
            ) { i, call in
                let r = batch[keys[i].read]
                call.keys.addJoined(r.reader.prefix, r.keys[keys[i].key])
                if let t = r.at { call.arguments.add(t) }
            }
            start = end
        }
        return replies
    }

    private static func decode(_ replies: ArraySlice<RedisReply>, keys: [String]) -> Result<[[UInt8]?], ReadFailure> {
        var objects: [[UInt8]?] = []
        objects.reserveCapacity(keys.count)
        for (key, reply) in zip(keys, replies) {
            switch reply {
            case .bulk(let bytes): objects.append(bytes)
            case .null: objects.append(nil)
            case .error(let message): return .failure(.failed(ServingError.readFailed(key: key, message: message).description))
            default: return .failure(.failed(ServingError.unexpectedReply(key: key, reply: reply.description).description))
            }
        }
        return .success(objects)
    }

    /// The libraries whose replies show they are missing, or that another
    /// version was loaded since (`EDDYSTATE` and a different version).
    private func staleLibraries(_ batch: [Read], _ replies: [RedisReply], on c: RedisClient) throws(RedisError)
        -> [FunctionLibrary]?
    {
        var stale: [String: FunctionLibrary] = [:]
        var i = 0
        for r in batch {
            let library = r.reader.library
            for reply in replies[i..<(i + r.keys.count)] {
                guard stale[library.libraryName] == nil, case .error(let message) = reply else { continue }
                if FunctionLibrary.isMissingFunction(message) {
                    stale[library.libraryName] = library
                } else if message.hasPrefix("EDDYSTATE"), try library.installedVersion(on: c) != library.version {
                    stale[library.libraryName] = library
                }
            }
            i += r.keys.count
        }
        return Array(stale.values)
    }

    private func ensureInstalled(_ library: FunctionLibrary, on c: RedisClient, force: Bool) throws(RedisError) {
        if !force, installed[library.libraryName] == library.version { return }
        try library.install(on: c, force: force)
        installed[library.libraryName] = library.version
    }

    // MARK: Connection

    private func connect() -> Result<RedisClient, ReadFailure> {
        if let connection { return .success(connection) }
        if let until = failFastUntil, ContinuousClock.now < until { return .failure(.unavailable(lastFailure)) }
        let started = ContinuousClock.now
        do {
            let c = try RedisClient(target, options: options)
            connection = c
            installed = [:]
            failFastUntil = nil
            return .success(c)
        } catch {
            lastFailure = "cannot reach Redis at \(target): \(error)"
            // A refused port answers at once: try again with the next batch.
            // A timeout would hold every request: wait a little first.
            if ContinuousClock.now - started >= options.connectTimeout / 2 { failFastUntil = .now + cooldown }
            return .failure(.unavailable(lastFailure))
        }
    }

    private func drop() {
        connection?.close()
        connection = nil
        installed = [:]
    }

    private func ping() -> (ok: Bool, detail: String) {
        for attempt in 0..<2 {
            let hadConnection = connection != nil
            switch connect() {
            case .failure(let f):
                return (false, f.description)
            case .success(let c):
                do {
                    var failure: String?
                    try c.forEachMaster { (master: RedisConnection) throws(RedisError) in
                        if failure == nil, let message = try master.command("PING").errorMessage {
                            failure = "PING \(master.url): \(message)"
                        }
                    }
                    if let failure { return (false, failure) }
                    return (true, "ok")
                } catch {
                    drop()
                    if !(hadConnection && attempt == 0) { return (false, "Redis at \(target) failed: \(error)") }
                }
            }
        }
        return (false, "Redis at \(target) failed")
    }
}

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ v: Value) { value = v }
    func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: Value) { lock.lock(); value = v; lock.unlock() }
}

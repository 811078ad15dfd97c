/// Which master serves each of the 16384 hash slots, as read from `CLUSTER SLOTS`.
public struct ClusterSlotMap: Sendable, Equatable {
    /// The masters that own at least one slot, in the order first met in the reply.
    public private(set) var masters: [RedisURL.Endpoint]
    /// Per slot, the index into ``masters`` of its owner, or `nil` if no master serves it.
    private var owners: [UInt16]

    private static let unassigned = UInt16.max

    /// A map in which no slot is served.
    public init() {
        masters = []
        owners = Array(repeating: Self.unassigned, count: HashSlot.count)
    }

    /// The owner of `slot` (0..<16384), or `nil` when no master serves it.
    public func owner(ofSlot slot: Int) -> RedisURL.Endpoint? {
        let owner = owners[slot]
        return owner == Self.unassigned ? nil : masters[Int(owner)]
    }

    /// The index in ``masters`` of the owner of `slot`, or `nil`.
    func masterIndex(ofSlot slot: Int) -> Int? {
        let owner = owners[slot]
        return owner == Self.unassigned ? nil : Int(owner)
    }

    /// Number of slots some master serves (16384 in a healthy cluster).
    public var coveredSlotCount: Int { owners.lazy.filter { $0 != Self.unassigned }.count }

    /// Records that `endpoint` serves `slot` (e.g. after a `MOVED` redirect).
    public mutating func assign(slot: Int, to endpoint: RedisURL.Endpoint) {
        let index: Int
        if let known = masters.firstIndex(of: endpoint) {
            index = known
        } else {
            masters.append(endpoint)
            index = masters.count - 1
        }
        owners[slot] = UInt16(index)
    }

    /// Parses a `CLUSTER SLOTS` reply: an array of `[start, end, [host, port, id, ...], replicas...]`.
    /// `askedHost` replaces an empty or `?` host (a node that does not know its own address).
    ///
    /// - Throws: ``RedisError/unexpectedReply(command:reply:)`` for a malformed reply.
    public static func parse(clusterSlots reply: RedisReply, askedHost: String) throws(RedisError) -> ClusterSlotMap {
        func malformed() -> RedisError {
            .unexpectedReply(command: "CLUSTER SLOTS", reply: reply.description)
        }
        if let message = reply.errorMessage { throw .server(message: message) }
        guard let ranges = reply.array else { throw malformed() }
        var map = ClusterSlotMap()
        for range in ranges {
            guard let parts = range.array, parts.count >= 3,
                  let start = parts[0].integer, let end = parts[1].integer,
                  0 <= start, start <= end, end < HashSlot.count,
                  let master = parts[2].array, master.count >= 2,
                  let rawHost = master[0].string, let port = master[1].integer, (1...65_535).contains(port)
            else { throw malformed() }
            let host = rawHost.isEmpty || rawHost == "?" ? askedHost : rawHost
            let endpoint = RedisURL.Endpoint.tcp(host: host, port: Int(port))
            for slot in Int(start)...Int(end) { map.assign(slot: slot, to: endpoint) }
        }
        return map
    }
}

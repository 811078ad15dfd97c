/// What a cluster node's error reply asks the client to do with a command.
enum ClusterRedirect: Equatable {
    /// `MOVED slot host:port`: the slot lives elsewhere now; update the map and resend there.
    case moved(slot: Int, to: RedisURL.Endpoint)
    /// `ASK slot host:port`: this key is being migrated; send `ASKING` + the command there once.
    case ask(slot: Int, to: RedisURL.Endpoint)
    /// `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`: not now; back off, refresh, resend.
    case retryLater

    /// Classifies an error reply; `nil` for an error that is the command's own answer.
    /// `replyingHost` stands in for an empty host in the redirect (`MOVED 12 :7001`).
    init?(errorMessage message: String, replyingHost: String) {
        if message.hasPrefix("MOVED ") || message.hasPrefix("ASK ") {
            let parts = message.split(separator: " ")
            guard parts.count >= 3, let slot = Int(parts[1]), (0..<HashSlot.count).contains(slot),
                  let colon = parts[2].lastIndex(of: ":"),
                  let port = Int(parts[2][parts[2].index(after: colon)...]), (1...65_535).contains(port)
            else { return nil }
            var host = String(parts[2][..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if host.isEmpty || host == "?" { host = replyingHost }
            let endpoint = RedisURL.Endpoint.tcp(host: host, port: port)
            self = message.hasPrefix("MOVED ") ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
            return
        }
        switch RedisError.code(ofServerMessage: message) {
        case "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN": self = .retryLater
        default: return nil
        }
    }
}

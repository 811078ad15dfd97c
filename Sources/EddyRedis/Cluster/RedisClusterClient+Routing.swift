import CHiredis

/// The routing core shared by the public pipelines.
extension RedisClusterClient {
    /// Sends commands `0..<count` to the masters of their slots and passes each final reply to
    /// `handle(index, reply)` (error replies included, redirections excluded).
    ///
    /// - Parameters:
    ///   - stage: builds command `index` into the scratch buffer and returns its slot (`nil`: no
    ///     key, any master will do). Called again for a command that is resent.
    ///   - emit: appends the staged command to a node's connection.
    ///   - isMissing: whether an error reply says the node lacks the script/function the command
    ///     runs; such a command is resent after `reload` ran on that node.
    ///   - reload: loads the script/function on a node's connection.
    func route(count: Int,
               stage: (Int) throws(RedisError) -> Int?,
               emit: (RedisConnection) throws(RedisError) -> Void,
               isMissing: (String) -> Bool = { _ in false },
               reload: (RedisConnection) throws(RedisError) -> Void = { _ in },
               handle: (Int, UnsafeMutablePointer<redisReply>) throws(RedisError) -> Void) throws(RedisError) {
        guard count > 0 else { return }
        do throws(RedisError) {
            pending.removeAll(keepingCapacity: true)
            pending.append(contentsOf: 0..<count)
            var attempt = 1
            while true {
                var outcome = RoundOutcome()
                try appendRound(&outcome, stage: stage, emit: emit)
                sendRound(&outcome)
                try readRound(&outcome, isMissing: isMissing, reload: reload, handle: handle)
                for index in usedNodes { nodes[index].routed.removeAll(keepingCapacity: true) }
                for node in nodes { node.failed = false }
                usedNodes.removeAll(keepingCapacity: true)
                if resend.isEmpty { return }
                guard attempt < retryPolicy.maxAttempts else {
                    throw outcome.lastError ?? .server(message: "CLUSTERDOWN commands still redirected after \(attempt) rounds")
                }
                if outcome.needsBackoff { RetryPolicy.sleep(retryPolicy.backoff(beforeRetry: attempt)) }
                if outcome.needsRefresh {
                    do { try refreshSlotMap() } catch { outcome.lastError = error }
                }
                swap(&pending, &resend)
                resend.removeAll(keepingCapacity: true)
                attempt += 1
            }
        } catch {
            abandonRound()
            throw error
        }
    }

    /// What one round of a routed pipeline met.
    struct RoundOutcome {
        var needsRefresh = false
        var needsBackoff = false
        var lastError: RedisError?
    }

    /// Builds and appends every pending command to its node's connection.
    private func appendRound(_ outcome: inout RoundOutcome,
                             stage: (Int) throws(RedisError) -> Int?,
                             emit: (RedisConnection) throws(RedisError) -> Void) throws(RedisError) {
        for index in pending {
            let slot = try stage(index)
            var asking = 0
            var target: Int
            if !askTargets.isEmpty, let node = askTargets.removeValue(forKey: index) {
                target = node
                asking = 1
            } else if let slot {
                target = Int(slotNodes[slot])
                if target < 0 {
                    outcome.needsRefresh = true
                    outcome.needsBackoff = true
                    outcome.lastError = .server(message: "CLUSTERDOWN Hash slot \(slot) is not served by any known master")
                    retry(index)
                    continue
                }
            } else {
                guard let first = slotNodes.first(where: { $0 >= 0 }) else {
                    outcome.needsRefresh = true
                    outcome.needsBackoff = true
                    retry(index)
                    continue
                }
                target = Int(first)
            }
            let node = nodes[target]
            if node.failed {
                retry(index)
                continue
            }
            do {
                let connection = try self.connection(node)
                if asking != 0 { try connection.append("ASKING") }
                try emit(connection)
            } catch where error.isConnectionError {
                fail(node, error, &outcome)
                retry(index)
                continue
            }
            if node.routed.isEmpty { usedNodes.append(target) }
            node.routed.append(index << 1 | asking)
        }
        askTargets.removeAll()
    }

    /// Writes every used node's pipeline before any reply is read.
    private func sendRound(_ outcome: inout RoundOutcome) {
        for index in usedNodes {
            let node = nodes[index]
            guard !node.failed, let connection = node.connection else { continue }
            do { try connection.send() } catch { fail(node, error, &outcome) }
        }
    }

    /// Reads every used node's replies; sorts them into handled, redirected and resent.
    private func readRound(_ outcome: inout RoundOutcome,
                           isMissing: (String) -> Bool,
                           reload: (RedisConnection) throws(RedisError) -> Void,
                           handle: (Int, UnsafeMutablePointer<redisReply>) throws(RedisError) -> Void) throws(RedisError) {
        for nodeIndex in usedNodes {
            let node = nodes[nodeIndex]
            guard !node.failed, let connection = node.connection else { continue }
            // Entries before `done` are handled or queued for resending.
            var done = 0
            do {
                while done < node.routed.count {
                    let entry = node.routed[done]
                    if entry & 1 != 0 { freeReplyObject(try connection.nextRawReply()) }   // ASKING's +OK
                    let reply = try connection.nextRawReply()
                    defer { freeReplyObject(reply) }
                    let index = entry >> 1
                    if let message = Hiredis.errorMessage(reply) {
                        if let redirect = ClusterRedirect(errorMessage: message, replyingHost: node.host) {
                            switch redirect {
                            case let .moved(slot, endpoint):
                                assign(slot: slot, to: endpoint)
                                statistics.moved += 1
                                outcome.needsRefresh = true
                            case let .ask(_, endpoint):
                                askTargets[index] = self.nodeIndex(for: endpoint)
                                statistics.asked += 1
                            case .retryLater:
                                statistics.retried += 1
                                outcome.needsBackoff = true
                                outcome.needsRefresh = outcome.needsRefresh || message.hasPrefix("CLUSTERDOWN")
                            }
                            outcome.lastError = .server(message: message)
                            retry(index)
                            done += 1
                            continue
                        }
                        if isMissing(message) {
                            node.needsReload = true
                            statistics.reloaded += 1
                            outcome.lastError = .server(message: message)
                            retry(index)
                            done += 1
                            continue
                        }
                    }
                    try handle(index, reply)
                    done += 1
                }
                if node.needsReload {
                    node.needsReload = false
                    try reload(connection)
                }
            } catch where error.isConnectionError {
                for entry in node.routed[done...] { retry(entry >> 1) }
                node.needsReload = false
                fail(node, error, &outcome, requeue: false)
            }
        }
    }

    private func retry(_ index: Int) {
        resend.append(index)
    }

    /// Marks a node failed for the round: its connection closed, its commands resent later.
    private func fail(_ node: Node, _ error: RedisError, _ outcome: inout RoundOutcome, requeue: Bool = true) {
        if requeue {
            for entry in node.routed { retry(entry >> 1) }
            node.routed.removeAll(keepingCapacity: true)
        }
        node.failed = true
        node.connection?.close()
        node.connection = nil
        statistics.retried += 1
        outcome.needsBackoff = true
        outcome.needsRefresh = true
        outcome.lastError = error
    }

    /// After an error thrown out of a round: drop connections with unread replies, reset state.
    private func abandonRound() {
        for node in nodes {
            if let connection = node.connection, connection.pendingReplyCount > 0 {
                connection.close()
                node.connection = nil
            }
            node.routed.removeAll(keepingCapacity: true)
            node.failed = false
            node.needsReload = false
        }
        usedNodes.removeAll(keepingCapacity: true)
        pending.removeAll(keepingCapacity: true)
        resend.removeAll(keepingCapacity: true)
        askTargets.removeAll()
    }
}

import EddyRedis
import Foundation
import Testing

@Suite("Server loss and reconnection")
struct ReconnectTests {
    @Test("server stopped mid-use: clear connection error; restarted: reconnect works")
    func stopAndRestart() throws {
        try withRedis { server, redis throws in
            _ = try redis.command("SET", "k", "v").checked()
            server.stop()

            let lost = caughtError { () throws(RedisError) in _ = try redis.command("PING") }
            #expect(lost?.isConnectionError == true, "\(String(describing: lost))")
            if case .connectionLost = lost {} else { Issue.record("expected connectionLost, got \(String(describing: lost))") }
            #expect(!redis.isConnected)
            // Later calls keep failing clearly instead of hanging.
            let again = caughtError { () throws(RedisError) in try redis.append("PING") }
            #expect(again?.description.contains("call reconnect()") == true)

            // While the server is down, reconnecting fails with connectionFailed.
            let refused = caughtError { () throws(RedisError) in try redis.reconnect() }
            if case .connectionFailed = refused {} else { Issue.record("expected connectionFailed, got \(String(describing: refused))") }

            try server.start()
            try redis.reconnect()
            #expect(try redis.command("PING") == .status("PONG"))
            #expect(try redis.command("GET", "k") == .null)   // save '' and no AOF: data gone
        }
    }

    @Test("server killed with commands in flight: the pipeline read fails, then recovery")
    func killedMidPipeline() throws {
        try withRedis { server, redis throws in
            for index in 0..<1_000 { try redis.append("SET", "k\(index)", index) }
            server.stop(.kill)
            let error = caughtError { () throws(RedisError) in try redis.drain(count: 1_000) }
            #expect(error?.isConnectionError == true, "\(String(describing: error))")
            try server.restart(.kill)
            try redis.reconnect()
            #expect(redis.pendingReplyCount == 0)
            #expect(try redis.command("DBSIZE") == .integer(0))
        }
    }

    @Test("AOF data survives a clean stop and restart on the same port and directory")
    func persistenceAcrossRestart() throws {
        try withRedis(options: ["appendonly": "yes"]) { server, redis throws in
            let port = server.port
            _ = try redis.command("HSET", "feature:1", "clicks", 5).checked()
            try server.restart()
            #expect(server.port == port)
            try redis.reconnect()
            #expect(try redis.command("HGET", "feature:1", "clicks") == .bulk("5"))
            #expect(try redis.command("CONFIG", "GET", "appendonly") == .array([.bulk("appendonly"), .bulk("yes")]))
        }
    }

    @Test("withRetry rides out a restart, and onConnect reloads functions")
    func retryAcrossRestart() throws {
        let library = "#!lua name=retrylib\nredis.register_function('ping2', function() return 'pong2' end)"
        let options = RedisConnection.Options(onConnect: { connection throws(RedisError) in
            try connection.functionLoad(library)
        })
        try withRedis(connectionOptions: options) { server, redis throws in
            #expect(try redis.fcall("ping2") == .bulk("pong2"))
            server.stop(.kill)
            // Restart from another thread while the caller is retrying.
            let restarter = Thread { try? server.start() }
            restarter.start()
            var attempts = 0
            let reply = try redis.withRetry(RetryPolicy(maxAttempts: 60, initialDelay: .milliseconds(20),
                                                        maxDelay: .milliseconds(250))) { connection throws(RedisError) in
                attempts += 1
                return try connection.fcall("ping2").checked()
            }
            #expect(reply == .bulk("pong2"))
            #expect(attempts >= 1)
            while !server.isRunning { Thread.sleep(forTimeInterval: 0.01) }
        }
    }

    @Test("commandTimeout turns a stalled server into timedOut, and reconnect recovers")
    func commandTimeout() throws {
        try withRedis(connectionOptions: .init(commandTimeout: .milliseconds(200))) { _, redis throws in
            let error = caughtError { () throws(RedisError) in _ = try redis.command("DEBUG", "SLEEP", 1) }
            if case .timedOut = error {} else { Issue.record("expected timedOut, got \(String(describing: error))") }
            #expect(error?.isTransient == true)
            // The server is still asleep: PING times out until it wakes; withRetry reconnects meanwhile.
            let pong = try redis.withRetry(RetryPolicy(maxAttempts: 40, initialDelay: .milliseconds(50),
                                                       maxDelay: .milliseconds(200))) { connection throws(RedisError) in
                try connection.command("PING")
            }
            #expect(pong == .status("PONG"))
        }
    }
}

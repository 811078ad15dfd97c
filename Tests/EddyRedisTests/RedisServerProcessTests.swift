import EddyDevKit
import EddyRedis
import Testing

@Suite("RedisServerProcess")
struct RedisServerProcessTests {
    @Test("options override the defaults; restart keeps port and directory; stop is idempotent")
    func lifecycle() throws {
        let server = try RedisServerProcess(options: ["appendonly": "yes", "maxmemory": "64mb"])
        let redis = try RedisConnection(url: server.url)
        #expect(try redis.command("CONFIG", "GET", "appendonly") == .array([.bulk("appendonly"), .bulk("yes")]))
        #expect(try redis.command("CONFIG", "GET", "save") == .array([.bulk("save"), .bulk("")]))
        #expect(try redis.command("CONFIG", "GET", "dir") == .array([.bulk("dir"), .bulk(server.directory)]))
        #expect(try redis.command("CONFIG", "GET", "maxmemory") == .array([.bulk("maxmemory"), .bulk("67108864")]))
        #expect(server.isRunning)

        let port = server.port
        let firstPID = server.pid
        try server.restart(.kill)
        #expect(server.port == port)
        #expect(server.pid != firstPID)
        server.stop()
        server.stop()
        #expect(!server.isRunning)
        #expect(server.pid == nil)
    }

    @Test("a server that cannot start reports its log")
    func badOption() {
        let error = caughtError { () throws(RedisServerProcessError) in
            _ = try RedisServerProcess(options: ["no-such-option": "1"])
        }
        guard case let .exitedDuringStartup(_, log) = error else {
            Issue.record("expected exitedDuringStartup, got \(String(describing: error))")
            return
        }
        #expect(log.contains("no-such-option"))
    }

    @Test("a missing executable is reported")
    func missingExecutable() {
        let error = caughtError { () throws(RedisServerProcessError) in
            _ = try RedisServerProcess(.init(executable: "/nonexistent/redis-server"))
        }
        if case .spawnFailed = error {} else { Issue.record("got \(String(describing: error))") }
    }
}

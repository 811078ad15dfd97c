import EddyDevKit
import EddyRedis
@testable import EddyWorker
import Testing

/// The worker's start-up advice on Redis's `hash-max-listpack-value`, read
/// from real redis-server processes.
@Suite("Redis listpack advice")
struct ListpackAdviceTests {
    @Test("Redis's default (64) gets advice naming the setting and the fix; 1024 gets none")
    func adviceFollowsTheSetting() throws {
        let defaults = try RedisServerProcess()
        let reply = try RedisConnection(url: defaults.url).command("CONFIG", "GET", "hash-max-listpack-value")
        let advice = try #require(StreamWorker.listpackAdvice(reply))
        #expect(advice.contains("hash-max-listpack-value is 64"))
        #expect(advice.contains("CONFIG SET hash-max-listpack-value 1024"))

        let tuned = try RedisServerProcess(options: ["hash-max-listpack-value": "1024"])
        let tunedReply = try RedisConnection(url: tuned.url).command("CONFIG", "GET", "hash-max-listpack-value")
        #expect(StreamWorker.listpackAdvice(tunedReply) == nil)
    }

    @Test("no advice when CONFIG is refused or answers something else")
    func silentWithoutAnAnswer() {
        #expect(StreamWorker.listpackAdvice(.error("ERR unknown command 'CONFIG'")) == nil)
        #expect(StreamWorker.listpackAdvice(.array([])) == nil)
        #expect(StreamWorker.listpackAdvice(.array([.bulk(Array("hash-max-listpack-value".utf8)), .bulk(Array("many".utf8))])) == nil)
    }
}

import EddyRedis
import Testing

@Suite("Credentials given apart from the URL")
struct RedisCredentialTests {
    @Test("a URL's own password wins; otherwise the given user and password fill it, single and cluster")
    func filling() throws {
        let bare = try RedisTarget(parsing: "redis://cache:6380/2")
        let filled = bare.fillingCredentials(username: "eddy", password: "pw")
        #expect(filled.username == "eddy" && filled.password == "pw")
        let own = try RedisTarget(parsing: "redis://me:mine@cache")
        #expect(own.fillingCredentials(username: "eddy", password: "pw") == own)
        #expect(bare.fillingCredentials(username: "eddy", password: nil) == bare)
        let cluster = try RedisTarget(parsing: "redis+cluster://a:7000,b:7001").fillingCredentials(username: nil, password: "pw")
        #expect(cluster.username == nil && cluster.password == "pw")
    }

    @Test("urlTextWithCredentials parses back to the same target, odd password bytes included; description hides it",
          arguments: ["redis://cache:6380/2", "unix:///run/redis.sock?db=3", "redis+cluster://a:7000,[::1]:7001", "redis://[::1]"])
    func roundTrip(text: String) throws {
        let target = try RedisTarget(parsing: text).fillingCredentials(username: "us er", password: "p@ss:w/o%rd?#é")
        let again = try RedisTarget(parsing: target.urlTextWithCredentials)
        #expect(again == target)
        #expect(again.password == "p@ss:w/o%rd?#é" && again.username == "us er")
        #expect(!target.description.contains("p@ss") && target.description.contains("***"))
    }

    @Test("a URL without a scheme is not quoted when it may hold a password")
    func missingSchemeHidesCredentials() {
        #expect(throws: RedisURLError.self) { try RedisTarget(parsing: "user:hunter2@cache:6379") }
        do { _ = try RedisTarget(parsing: "user:hunter2@cache:6379") } catch {
            #expect(!error.description.contains("hunter2"))
        }
        do { _ = try RedisTarget(parsing: "cache:6379") } catch {
            #expect(error.description.contains("'cache:6379'"))
        }
    }
}

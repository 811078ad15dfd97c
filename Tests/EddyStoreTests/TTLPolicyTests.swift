import EddyStore
import Testing

/// When the worker re-arms an entity's expiry.
@Suite("TTLPolicy")
struct TTLPolicyTests {
    @Test("first write re-arms; then at most every ttl/64; expiry outlasts ttl")
    func rearmSchedule() {
        let p = TTLPolicy(ttlMs: 64_000)
        #expect(p.rearmInterval == 1_000)
        #expect(p.expiryMs == 65_000)
        #expect(p.shouldRearm(lastMs: nil, nowMs: 0))
        #expect(!p.shouldRearm(lastMs: 10_000, nowMs: 10_999))
        #expect(p.shouldRearm(lastMs: 10_000, nowMs: 11_000))
        // Written just before the re-arm is due: still alive for a full ttl.
        let lastRearm: Int64 = 10_000, lastWrite: Int64 = 10_999
        #expect(lastRearm + p.expiryMs >= lastWrite + p.ttlMs)
    }

    @Test("ttl 0: never expires, never re-arms")
    func disabled() {
        let p = TTLPolicy(ttlMs: 0)
        #expect(!p.isEnabled)
        #expect(!p.shouldRearm(lastMs: nil, nowMs: 123))
    }
}

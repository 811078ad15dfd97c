/// The least Redis ACL each Eddy role needs for one topology's keys, as
/// `ACL SETUSER` rules. `eddy acl` prints them, the README shows them, and
/// the security tests grant exactly these: a command added to a role without
/// a rule here fails those tests.
///
/// Commands a script or Function calls (`redis.call`) are checked against the
/// caller's ACL too, so they are listed with the role that runs them.
public enum RedisRole: String, CaseIterable, Sendable {
    /// `eddy run` and `eddy replay --emit redis`: loads and writes entities,
    /// loads the write script and the read Function.
    case worker
    /// `eddy serve` and `eddy get`: reads through the Function; the console of
    /// `eddy serve` (`/ui`) also samples the prefix (`SCAN`) and shows an entity's
    /// stored hash (`HGETALL`). Nothing that writes.
    case serve
    /// `eddy verify` and `eddy drift`: reads through the Function, scans the
    /// prefix and reads whole hashes.
    case audit

    /// What each role's connections do on every server: name themselves, pick a
    /// database, check liveness, and on a Cluster fetch the slot map and follow
    /// `ASK` redirects.
    static let connectionRules = ["+ping", "+client|setname", "+select", "+cluster|slots", "+asking"]

    /// The read Function (`FCALL_RO`) and what it calls: `HMGET` of the entity,
    /// and `TIME` when no read time is given.
    static let readRules = ["+fcall_ro", "+hmget", "+time"]

    /// The command rules of this role, beyond ``connectionRules``.
    var commandRules: [String] {
        switch self {
        case .worker:
            // Loads (HMGET), the fenced write script (SCRIPT LOAD, EVALSHA, and
            // its HGET/HSET/PEXPIRE), the partition-epoch fence (INCR, WATCH,
            // MGET, MULTI/EXEC of HSET/PEXPIRE/SET: PartitionEpochs), and
            // loading the read Function it installs.
            return ["+hmget", "+script|load", "+evalsha", "+hget", "+hset", "+pexpire", "+function|load",
                    "+incr", "+watch", "+unwatch", "+mget", "+multi", "+exec", "+set"]
                + Self.readRules.filter { $0 != "+hmget" }
        case .serve:
            return Self.readRules + ["+scan", "+hgetall"]
        case .audit:
            return Self.readRules + ["+scan", "+hgetall"]
        }
    }

    /// The rules after `ACL SETUSER <user> reset on >password`: the key
    /// pattern `~<prefix>*` of each prefix (one per entity), no channels, no
    /// command but this role's.
    public func rules(keyPrefixes: [String]) -> [String] {
        keyPrefixes.map { "~\(Self.escapedPattern($0))*" } + ["resetchannels", "-@all"] + Self.connectionRules + commandRules
    }

    /// The whole `ACL SETUSER` command, with `password` written as `>password`
    /// (pass a placeholder to print it).
    public func setUserCommand(user: String, password: String, keyPrefix: String) -> [String] {
        setUserCommand(user: user, password: password, keyPrefixes: [keyPrefix])
    }

    /// The same for the prefixes of several entities (`entities:`).
    public func setUserCommand(user: String, password: String, keyPrefixes: [String]) -> [String] {
        ["ACL", "SETUSER", user, "reset", "on", ">\(password)"] + rules(keyPrefixes: keyPrefixes)
    }

    /// A key prefix as a glob that matches it literally (`*?[]\` escaped).
    static func escapedPattern(_ prefix: String) -> String {
        var out = ""
        for c in prefix {
            if "*?[]\\".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }
}

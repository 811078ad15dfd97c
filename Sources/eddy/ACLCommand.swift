import ArgumentParser
import EddyCore
import EddyStore

/// `eddy acl`: the least-privilege Redis users for a topology, as commands
/// an operator runs once (see `RedisRole`).
struct ACLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl",
        abstract: "Print the minimal Redis ACL (ACL SETUSER) of each Eddy role for a topology.",
        discussion: """
            Roles: worker (eddy run, eddy replay --emit redis), serve (eddy serve, eddy get), audit (eddy verify, \
            eddy drift). Each user may touch only the topology's key prefix and run only its role's commands. \
            The password is printed as a placeholder: replace it, or pipe through sed. Give each user to Eddy \
            with EDDY_REDIS_USERNAME and EDDY_REDIS_PASSWORD (or --redis-password-file), or in the URL.
            """
    )

    @Argument(help: "Topology file (or name under Topologies/).")
    var topology: String

    @Option(name: .long, help: "Only this role: worker, serve or audit.")
    var role: String?

    @Option(name: .long, help: "User name prefix: users are <prefix>-<role> (default: eddy-<topology>).")
    var userPrefix: String?

    func run() throws {
        let t = try loadTopology(topology)
        // Every entity's prefix (one in the single-key form).
        let prefixes = t.entityTopologies.map(\.sink.keyPrefix)
        let roles: [RedisRole]
        if let role {
            guard let r = RedisRole(rawValue: role) else {
                throw ValidationError("unknown role '\(role)': use worker, serve or audit")
            }
            roles = [r]
        } else {
            roles = RedisRole.allCases
        }
        for r in roles {
            let user = "\(userPrefix ?? "eddy-\(t.name)")-\(r.rawValue)"
            let words = r.setUserCommand(user: user, password: "CHANGE-ME", keyPrefixes: prefixes)
            print(words.map(Self.quotedForRedisCLI).joined(separator: " "))
        }
    }

    /// A word as redis-cli reads it: bare when plain, else double-quoted.
    static func quotedForRedisCLI(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "~*+-|>:_.@".contains($0) }
        guard !plain else { return word }
        var out = "\""
        for c in word {
            if c == "\"" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out + "\""
    }
}

import ArgumentParser
import EddyDevKit

/// How generated clickstream events pick users and items (`eddy dev
/// generate`, `eddy dev produce --generate`).
struct PopulationOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "uniform (every event picks any user, items uniform) or realistic (sessions of a heavy-tailed population: most users seen a few times, a few often; items skewed).",
        valueName: "uniform|realistic"))
    var population = "uniform"
    @Option(help: "realistic: Lomax shape of each user's extra sessions (smaller: a heavier tail of very active users).")
    var sessionTail = 1.5
    @Option(help: "realistic: Lomax scale of each user's extra sessions.")
    var sessionScale = 0.5
    @Option(help: "realistic: mean events per session (geometric, at least 1).")
    var eventsPerSession = 2.0
    @Option(help: "realistic: sessions open at a time, whose events interleave.")
    var concurrentSessions = 512
    @Option(help: "realistic: distinct items.")
    var items = 1_000_000
    @Option(help: "realistic: item popularity skew (an item is items·u^skew, u uniform).")
    var itemSkew = 3.0

    func validate() throws {
        guard population == "uniform" || population == "realistic" else {
            throw ValidationError("--population is uniform or realistic, not \(population)")
        }
        guard sessionTail > 0, sessionScale >= 0, eventsPerSession >= 1, concurrentSessions >= 1, items >= 1, itemSkew > 0 else {
            throw ValidationError("population settings out of range: --session-tail > 0, --session-scale >= 0, --events-per-session >= 1, --concurrent-sessions >= 1, --items >= 1, --item-skew > 0")
        }
    }

    /// nil for the uniform population.
    func parameters(users: Int) -> RealisticPopulation.Parameters? {
        guard population == "realistic" else { return nil }
        var p = RealisticPopulation.Parameters(users: users)
        p.sessionTail = sessionTail
        p.sessionScale = sessionScale
        p.eventsPerSession = eventsPerSession
        p.concurrentSessions = concurrentSessions
        p.items = items
        p.itemSkew = itemSkew
        return p
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// hiredis writes with `write(2)`, so a write to a socket the server has closed raises
/// `SIGPIPE`, whose default action kills the process. Before the first connection the
/// signal is set to "ignore" (the write then fails with `EPIPE` and surfaces as
/// ``RedisError/connectionLost(reason:)``), unless the process already installed a handler.
enum IgnoreSIGPIPE {
    private static let done: Bool = {
        var current = sigaction()
        guard sigaction(SIGPIPE, nil, &current) == 0 else { return false }
        // SIG_DFL is the null handler.
        #if canImport(Glibc)
        let isDefault = current.__sigaction_handler.sa_handler == nil
        #else
        let isDefault = current.__sigaction_u.__sa_handler == nil
        #endif
        if isDefault {
            signal(SIGPIPE, SIG_IGN)
        }
        return true
    }()

    /// Applies the setting once per process; cheap afterwards.
    static func ensure() {
        _ = done
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Kills still-running server processes and removes their scratch directories when the process
/// exits normally (`exit`, or the end of top-level code), where deinitialisers never run — e.g.
/// a `RedisServerProcess` held in a global. A crash or `SIGKILL` of the parent still leaves the
/// child running: `posix_spawn` offers no parent-death signal.
enum ExitCleanup {
    private struct Registry {
        var pids: Set<pid_t> = []
        var directories: Set<String> = []
    }

    private static let registry = PThreadLock(Registry())

    private static let installed: Bool = {
        atexit { ExitCleanup.run() }
        return true
    }()

    /// Remembers a spawned child until it is reaped.
    static func track(pid: pid_t) {
        _ = installed
        registry.withLock { _ = $0.pids.insert(pid) }
    }

    /// Forgets a child that has been reaped.
    static func untrack(pid: pid_t) {
        registry.withLock { _ = $0.pids.remove(pid) }
    }

    /// Remembers a scratch directory until it is removed.
    static func track(directory: String) {
        _ = installed
        registry.withLock { _ = $0.directories.insert(directory) }
    }

    /// Forgets a scratch directory that has been removed.
    static func untrack(directory: String) {
        registry.withLock { _ = $0.directories.remove(directory) }
    }

    private static func run() {
        let registered = registry.withLock { registry in
            defer { registry = Registry() }
            return registry
        }
        for pid in registered.pids {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        }
        for directory in registered.directories {
            TemporaryDirectory.removeRecursively(directory)
        }
    }
}

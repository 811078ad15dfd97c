import EddyRedis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Spawning, signalling and reaping a child process with `posix_spawn` (no Foundation).
enum ChildProcess {
    /// Starts `executable` (searched in `PATH`) with `arguments`; stdin reads `/dev/null`,
    /// stdout and stderr append to `outputPath`. Returns the pid or an `errno` value.
    static func spawn(executable: String, arguments: [String], outputPath: String) -> Result<pid_t, SpawnError> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The parent ignores SIGPIPE (see IgnoreSIGPIPE) and test runners may block signals;
        // give the child default dispositions and an empty mask.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, executable, &actions, &attributes, argv, environ)
        guard status == 0 else { return .failure(SpawnError(code: status)) }
        ExitCleanup.track(pid: pid)
        return .success(pid)
    }

    /// Sends `signal` to `pid`.
    static func send(_ signal: Int32, to pid: pid_t) {
        kill(pid, signal)
    }

    /// Reaps `pid` if it has exited; returns its wait status, or `nil` if it is still running.
    static func reapIfExited(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                ExitCleanup.untrack(pid: pid)
                return status
            }
            if result == -1, errno == EINTR { continue }
            // 0: still running; -1 (ECHILD): already reaped elsewhere, treat as gone.
            if result == 0 { return nil }
            ExitCleanup.untrack(pid: pid)
            return -1
        }
    }

    /// Waits up to `timeout` for `pid` to exit, then kills it with `SIGKILL` and waits for that.
    static func waitForExit(_ pid: pid_t, timeout: Duration) -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = reapIfExited(pid) { return status }
            RetryPolicy.sleep(.milliseconds(5))
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        ExitCleanup.untrack(pid: pid)
        return status
    }

    /// A readable description of a wait status.
    static func describe(waitStatus status: Int32) -> String {
        let signal = status & 0x7F
        if signal == 0 { return "exited with status \((status >> 8) & 0xFF)" }
        return "killed by signal \(signal)"
    }

    /// `posix_spawn` failure.
    struct SpawnError: Error {
        let code: Int32
        var message: String { String(cString: strerror(code)) }
    }
}

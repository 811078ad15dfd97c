import EddyRedis
import Foundation

/// What one drain of `eddy bench worker` cost: events/s, and CPU in Redis
/// (`INFO cpu`, the server process's user+system time; `INFO commandstats`,
/// the time inside the write commands) and in the worker (`getrusage` of
/// this process less the in-process mock broker's threads, `rdk:mock`, read
/// from /proc; the bench's own loop only sleeps meanwhile; the worker's stop,
/// which drops every key, is included), per entity write and per event.
struct DrainCost {
    var eventsPerSecond: Double
    var entityWrites: Int
    var events: Int
    var redisCPUSeconds: Double
    /// Microseconds inside EVALSHA, HSET, PEXPIRE, EXEC and HMGET (commandstats).
    var redisCommandMicros: [String: Double]
    var workerCPUSeconds: Double
    var redisBytes: Int
    var redisKeys: Int

    var redisMicrosPerWrite: Double { redisCPUSeconds * 1e6 / Double(max(entityWrites, 1)) }
    var workerSecondsPerMillionEvents: Double { workerCPUSeconds * 1e6 / Double(max(events, 1)) }

    var summary: String {
        let commands = redisCommandMicros.sorted { $0.key < $1.key }
            .map { "\($0.key) \(String(format: "%.2f", $0.value / Double(max(entityWrites, 1)))) µs" }.joined(separator: ", ")
        return "\(Int(eventsPerSecond)) events/s, \(entityWrites) entity writes; Redis CPU \(String(format: "%.2f", redisMicrosPerWrite)) µs per entity write (\(commands)); worker CPU \(String(format: "%.2f", workerSecondsPerMillionEvents)) s per 1M events; Redis \(redisBytes / max(redisKeys, 1)) B per key"
    }

    /// Runs `drain` (which returns its events/s and entity writes) between
    /// two readings of Redis's and this process's CPU time.
    static func measure(redis url: RedisURL, events: Int, _ drain: () throws -> (rate: Double, written: Int)) throws -> DrainCost {
        let connection = try RedisConnection(url: url)
        _ = try connection.command("CONFIG", "RESETSTAT").checked()
        let redisBefore = try cpuSeconds(connection)
        let workerBefore = processCPUSeconds() - threadCPUSeconds(named: "rdk:mock")
        let (rate, written) = try drain()
        let workerAfter = processCPUSeconds() - threadCPUSeconds(named: "rdk:mock")
        let redisAfter = try cpuSeconds(connection)
        var commands: [String: Double] = [:]
        for line in try info(connection, "commandstats").split(whereSeparator: \.isNewline) {
            // cmdstat_evalsha:calls=1,usec=2,usec_per_call=2.00,...
            guard line.hasPrefix("cmdstat_"), let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[line.index(line.startIndex, offsetBy: 8)..<colon])
            guard ["evalsha", "hset", "pexpire", "exec", "hmget", "mget", "watch", "incr"].contains(name) else { continue }
            for field in line[line.index(after: colon)...].split(separator: ",") where field.hasPrefix("usec=") {
                commands[name] = Double(field.dropFirst(5))
            }
        }
        let memory = try info(connection, "memory")
        let bytes = memory.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }
            .flatMap { Int($0.dropFirst("used_memory:".count)) } ?? 0
        let keys = Int(try connection.command("DBSIZE").checked().integer ?? 0)
        return DrainCost(eventsPerSecond: rate, entityWrites: written, events: events,
                         redisCPUSeconds: redisAfter - redisBefore, redisCommandMicros: commands,
                         workerCPUSeconds: workerAfter - workerBefore, redisBytes: bytes, redisKeys: keys)
    }

    static func info(_ connection: RedisConnection, _ section: String) throws -> String {
        try connection.command("INFO", section).checked().string ?? ""
    }

    static func cpuSeconds(_ connection: RedisConnection) throws -> Double {
        var total = 0.0
        for line in try info(connection, "cpu").split(whereSeparator: \.isNewline)
        where line.hasPrefix("used_cpu_sys:") || line.hasPrefix("used_cpu_user:") {
            total += Double(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return total
    }

    /// CPU seconds of this process's live threads called `name`
    /// (/proc/self/task/*/stat: utime and stime, fields 14 and 15, in clock ticks).
    static func threadCPUSeconds(named name: String) -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = 0.0
        for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
            guard let comm = try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8),
                  comm.trimmingCharacters(in: .whitespacesAndNewlines) == name,
                  let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { continue }
            // Fields after the command name (which may hold spaces): state is field 3.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            total += (user + system) / ticks
        }
        return total
    }

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}

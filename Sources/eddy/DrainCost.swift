import EddyRedis
import Foundation

/// What one drain of `eddy bench worker` cost: events/s, and CPU in Redis
/// (`INFO cpu`, the server process's user+system time; `INFO commandstats`,
/// the time inside the write commands) and in this process (`getrusage`:
/// the worker's threads; the bench's own loop only sleeps meanwhile), per
/// entity write and per event.
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
        let workerBefore = processCPUSeconds()
        let (rate, written) = try drain()
        let workerAfter = processCPUSeconds()
        let redisAfter = try cpuSeconds(connection)
        var commands: [String: Double] = [:]
        for line in try info(connection, "commandstats").split(whereSeparator: \.isNewline) {
            // cmdstat_evalsha:calls=1,usec=2,usec_per_call=2.00,...
            guard line.hasPrefix("cmdstat_"), let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[line.index(line.startIndex, offsetBy: 8)..<colon])
            guard ["evalsha", "hset", "pexpire", "exec", "hmget"].contains(name) else { continue }
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

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}

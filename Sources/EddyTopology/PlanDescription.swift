import EddyCore

extension Topology {
    /// A human-readable compiled plan, as `eddy check` prints it.
    public var planDescription: String {
        var lines: [String] = []
        let keyText: String = {
            switch key {
            case .field(let p): return "field \(p)"
            case .messageKey: return "Kafka message key"
            case .fields(let ps): return "composite [\(ps.map(\.description).joined(separator: ", "))], stored as the parts joined by | (\\ and | escaped with \\)"
            }
        }()
        let timeText: String = {
            if case .field(let p, let u) = time { return "field \(p) (\(u.rawValue))" } else { return "Kafka message timestamp" }
        }()
        lines.append("topology \(name)")
        lines.append("  source       kafka \(source.brokers), topics \(source.topics.joined(separator: ", ")), group \(source.group)")
        if source.format != "json" {
            let from = source.schemaRegistry.map { "schema registry \($0.url) (Confluent wire format)" }
                ?? source.schemaFile.map { "fixed schema \($0) (bare datums)" }
                ?? "descriptor \(source.descriptorFile ?? "?"), message \(source.message ?? "?") (bare messages)"
            lines.append("  format       \(source.format), \(from)")
        }
        if !source.properties.isEmpty {
            lines.append("               properties: " + source.properties.sorted { $0.key < $1.key }.map { "\($0.key)=\(Secrets.displayedValue(ofProperty: $0.key, $0.value))" }.joined(separator: ", "))
        }
        if !entities.isEmpty {
            lines.append("  event time   \(timeText), allowed lateness \(formatDuration(allowedLatenessMs))")
            for e in entities {
                let t = entity(named: e.name)!
                var sub = t.planDescription.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                sub = sub.filter { $0.hasPrefix("  key") || $0.hasPrefix("  parts") || $0.hasPrefix("  features") || $0.hasPrefix("    ")
                    || $0.hasPrefix("  derived") || $0.hasPrefix("  prefix") || $0.hasPrefix("  function") }
                lines.append("  entity \(e.name)")
                lines.append(contentsOf: sub.map { "  " + $0 })
            }
            lines.append("  sink         redis \(Secrets.redactingURLPassword(sink.redisURL)), ttl \(formatDuration(sink.ttlMs)), flush every \(formatDuration(sink.flushIntervalMs))\(sink.layout == .lean ? ", layout lean (no point-feature fields)" : "")")
            lines.append("  dead letter  \(deadLetter.enabled ? "kafka topic \(deadLetter.topic)" : "disabled (rejected events are only counted)")")
            lines.append("  fields read  \(entities.flatMap { FeatureEngine.fieldPaths(of: entity(named: $0.name)!) }.map(\.description).uniqued().joined(separator: ", "))")
            return lines.joined(separator: "\n")
        }
        lines.append("  key          \(keyText)\(keyHashing.map { ", stored as \($0)" } ?? "")")
        if entityName != nil {
            lines.append("  parts        \(parts == .one ? "one (the key's events come from one partition)" : "per_partition (a part per source partition, merged at read time)")")
            lines.append("  prefix       \"\(sink.keyPrefix)\"")
            lines.append("  function     eddy_\(name.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" }.map(String.init).joined())_features")
        }
        lines.append("  event time   \(timeText), allowed lateness \(formatDuration(allowedLatenessMs))")
        lines.append("  features")
        for f in features {
            var d: String
            switch f.kind {
            case .lastN(let field, let n, let distinct):
                d = "last_n of \(field), n \(n)\(distinct ? ", distinct" : "")"
            case .session(let gap):
                d = "session, gap \(formatDuration(gap)) -> \(f.outputNames.joined(separator: ", "))"
            case .window(let agg, let field, let w, let h):
                d = "\(agg.rawValue)\(field.map { " of \($0)" } ?? "")" + span(w, h)
            case .tiled(let agg, let field, let w, let h):
                switch agg {
                case .distinctCount(let p, let limit): d = "distinct_count of \(field) (precision \(p), exact to \(limit))"
                case .percentile(_, let a):
                    d = "percentile of \(field) (relative accuracy \(a)) -> \(f.outputNames.joined(separator: ", "))"
                case .countBy(let top, let max): d = "count_by of \(field) (top \(top), \(max) values per tile)"
                default: d = "\(agg.kindName) of \(field)"
                }
                d += span(w, h)
            case .timeSince:
                d = "time_since (ms since the latest matching event)"
            }
            if let filter = f.filter { d += " where \(filter)" }
            lines.append("    \(f.name.padding(14)) \(d)")
        }
        if !derived.isEmpty {
            lines.append("  derived      (at read time, after the features)")
            for d in derived { lines.append("    \(d.name.padding(14)) = \(d.expression)") }
        }
        lines.append("  sink         redis \(Secrets.redactingURLPassword(sink.redisURL)), prefix \"\(sink.keyPrefix)\", ttl \(formatDuration(sink.ttlMs)), flush every \(formatDuration(sink.flushIntervalMs))\(sink.layout == .lean ? ", layout lean (no point-feature fields)" : "")")
        lines.append("  dead letter  \(deadLetter.enabled ? "kafka topic \(deadLetter.topic)" : "disabled (rejected events are only counted)")")
        lines.append("  fields read  \(FeatureEngine.fieldPaths(of: self).map(\.description).uniqued().joined(separator: ", "))")
        return lines.joined(separator: "\n")
    }
}

private func span(_ w: Int64, _ h: Int64) -> String {
    w == 0 ? " over the lifetime" : " over \(formatDuration(w)), hop \(formatDuration(h)) (\(w / h) tiles)"
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}

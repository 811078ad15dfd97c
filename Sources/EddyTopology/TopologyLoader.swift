import EddyCore
import EddyFormats
import Foundation
import Yams

/// Reads topology YAML files into validated `Topology` values, collecting
/// every problem with its file, line, column and a fix.
public struct TopologyLoader: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Loads one file.
    public func load(path: String) throws(TopologyErrors) -> Topology {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TopologyErrors(diagnostics: [
                Diagnostic(file: path, line: 0, column: 0, message: "cannot read the file", fix: "check the path and permissions")
            ])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TopologyErrors(diagnostics: [
                Diagnostic(file: path, line: 1, column: 1, message: "the file is not UTF-8 text", fix: "save it as UTF-8")
            ])
        }
        return try parse(text, file: path)
    }

    /// Parses topology YAML text; `file` names it in diagnostics.
    public func parse(_ text: String, file: String) throws(TopologyErrors) -> Topology {
        var r = NodeReader(file: file, environment: environment)
        r.sourceLines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let root: Node
        do {
            guard let n = try Yams.compose(yaml: text) else {
                throw TopologyErrors(diagnostics: [
                    Diagnostic(file: file, line: 1, column: 1, message: "the file is empty", fix: "see Topologies/clickstream.yaml for a complete example")
                ])
            }
            root = n
        } catch let e as TopologyErrors {
            throw e
        } catch let e as YamlError {
            throw TopologyErrors(diagnostics: [yamlDiagnostic(e, file: file)])
        } catch {
            throw TopologyErrors(diagnostics: [Diagnostic(file: file, line: 1, column: 1, message: "\(error)")])
        }
        let topology = r.topology(root)
        if !r.diagnostics.isEmpty || topology == nil { throw TopologyErrors(diagnostics: r.diagnostics) }
        return topology!
    }

    func yamlDiagnostic(_ e: YamlError, file: String) -> Diagnostic {
        switch e {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return Diagnostic(file: file, line: mark.line, column: mark.column, message: "YAML syntax: \(problem)",
                              fix: "check indentation and quoting on this line and the one before")
        default:
            return Diagnostic(file: file, line: 1, column: 1, message: "YAML: \(e)")
        }
    }
}

/// Walks the YAML tree, reporting problems instead of stopping at the first.
struct NodeReader {
    let file: String
    let environment: [String: String]
    var diagnostics: [Diagnostic] = []
    /// The file's lines, for positions inside block scalars.
    var sourceLines: [Substring] = []
    /// Where each field path was first written, to report schema problems.
    var pathNodes: [FieldPath: Node] = [:]

    mutating func report(_ node: Node?, _ message: String, fix: String? = nil) {
        let m = node?.mark
        diagnostics.append(Diagnostic(file: file, line: m?.line ?? 1, column: m?.column ?? 1, message: message, fix: fix))
    }

    /// The members of a mapping, reporting keys not in `allowed`.
    mutating func mapping(_ node: Node, _ what: String, allowed: [String]) -> [String: Node]? {
        guard let m = node.mapping else {
            report(node, "\(what) must be a mapping of keys to values", fix: "indent its keys under it, like `\(allowed.first ?? "key"): ...`")
            return nil
        }
        var out: [String: Node] = [:]
        for (k, v) in m {
            let name = k.scalar?.string ?? ""
            if !allowed.contains(name) {
                let hint = closest(name, in: allowed).map { "did you mean '\($0)'?" } ?? "allowed keys: \(allowed.joined(separator: ", "))"
                report(k, "unknown key '\(name)' in \(what)", fix: hint)
                continue
            }
            if out[name] != nil { report(k, "'\(name)' appears twice in \(what)", fix: "keep one of them") }
            out[name] = v
        }
        return out
    }

    /// A scalar with `${VAR}` substituted.
    mutating func string(_ node: Node?, _ what: String) -> String? {
        guard let node else { return nil }
        guard let s = node.scalar?.string else {
            report(node, "\(what) must be a single value, not a list or mapping")
            return nil
        }
        switch substituteVariables(s, environment: environment) {
        case .success(let v): return v
        case .failure(.unset(let name, _)):
            report(node, "unknown variable '\(name)' in \(what): it is not set in the environment",
                   fix: "set \(name), or give a default: ${\(name):-value}")
        case .failure(.badName(let name, _)):
            report(node, "'${\(name)}' is not a variable reference", fix: "variable names use letters, digits and _, as in ${EDDY_BROKERS}")
        case .failure(.unterminated):
            report(node, "'${' without a closing '}' in \(what)", fix: "close it: ${NAME} or ${NAME:-default}")
        }
        return nil
    }

    mutating func required(_ m: [String: Node], _ key: String, in what: String, example: String) -> Node? {
        guard let n = m[key] else {
            diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "\(what) is missing '\(key)'", fix: "add `\(example)`"))
            return nil
        }
        return n
    }

    mutating func duration(_ node: Node?, _ what: String) -> Int64? {
        guard let node, let s = string(node, what) else { return nil }
        guard let ms = parseDuration(s) else {
            let fix = Int64(s) != nil ? "add a unit: \(s)ms, \(s)s, \(s)m, \(s)h or \(s)d" : "write a number and a unit (ms, s, m, h, d), like 5m or 24h"
            report(node, "'\(s)' is not a duration for \(what)", fix: fix)
            return nil
        }
        return ms
    }

    mutating func integer(_ node: Node?, _ what: String, range: ClosedRange<Int>, fix: String? = nil) -> Int? {
        guard let node, let s = string(node, what) else { return nil }
        guard let v = Int(s), range.contains(v) else {
            report(node, "\(what) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(s)'", fix: fix)
            return nil
        }
        return v
    }

    mutating func bool(_ node: Node?, _ what: String) -> Bool? {
        guard let node, let s = string(node, what) else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            report(node, "\(what) must be true or false, not '\(s)'")
            return nil
        }
    }

    mutating func fieldPath(_ node: Node?, _ what: String) -> FieldPath? {
        guard let node, let s = string(node, what) else { return nil }
        let p = FieldPath(dotted: s)
        guard !s.isEmpty, !p.components.contains(where: \.isEmpty) else {
            report(node, "'\(s)' is not a field path for \(what)", fix: "name a field, or a nested one with dots: user.id")
            return nil
        }
        if pathNodes[p] == nil { pathNodes[p] = node }
        return p
    }

    // MARK: Sections

    mutating func topology(_ root: Node) -> Topology? {
        let keys = ["name", "source", "key", "time", "allowed_lateness", "features", "derived", "sink", "dead_letter",
                    "max_event_bytes", "entities"]
        guard let m = mapping(root, "the topology", allowed: keys) else { return nil }
        let name = required(m, "name", in: "the topology", example: "name: clickstream").flatMap { string($0, "name") }
        if let name, name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) {
            report(m["name"], "topology name '\(name)' may only use letters, digits, '_' and '-'")
        }
        let multi = m["entities"] != nil
        var misplaced = false
        if multi {
            for k in ["key", "features", "derived"] where m[k] != nil {
                report(m[k], "'\(k)' is set both at the top and through `entities:`",
                       fix: "move it into an entity (each entity has its own key, features and derived), or remove `entities:` for the single-key form")
                misplaced = true
            }
        }
        let source = required(m, "source", in: "the topology", example: "source: {brokers: localhost:9092, topic: events}").flatMap { self.source($0, topologyName: name ?? "eddy") }
        var key: KeySource? = nil
        if !multi {
            key = required(m, "key", in: "the topology", example: "key: user_id").flatMap { self.key($0) }
            if case .fields = key {
                report(m["key"], "a composite key needs the entities form",
                       fix: "write `entities: [{name: NAME, key: [\(key!.paths.map(\.description).joined(separator: ", "))], features: [...]}]`")
                key = nil
            }
        }
        let hashing: (ok: Bool, hashing: KeyHashing?) = multi ? (true, nil) : (m["key"].map { keyHashing($0) } ?? (true, nil))
        let time = required(m, "time", in: "the topology", example: "time: {field: ts, unit: ms}").flatMap { self.time($0) }
        let lateness = m["allowed_lateness"].map { duration($0, "allowed_lateness") } ?? 300_000
        let maxBytes = m["max_event_bytes"].map { integer($0, "max_event_bytes", range: 64...(64 << 20)) } ?? (1 << 20)
        var features: [FeatureSpec]? = nil
        var derived: [DerivedSpec]? = nil
        if !multi {
            features = required(m, "features", in: "the topology", example: "features: [...]").flatMap { self.features($0) }
            derived = m["derived"] == nil ? [] : self.derived(m["derived"]!, features: features)
        }
        let sink = required(m, "sink", in: "the topology", example: "sink: {redis: redis://127.0.0.1:6379}").flatMap { self.sink($0, topologyName: name ?? "eddy") }
        let dlq = m["dead_letter"].map { deadLetter($0) } ?? DeadLetterConfig(topic: "")
        var entities: [EntitySpec] = []
        if multi {
            guard let list = self.entities(m["entities"]!, basePrefix: sink?.keyPrefix ?? "\(name ?? "eddy"):") else { return nil }
            entities = list
            if let first = list.first {
                key = first.key
                features = first.features
                derived = first.derived
            }
        }
        guard let name, let source, let key, let time, let lateness, let features, let derived, var sink, let dlq, let maxBytes,
              !misplaced, hashing.ok else {
            return nil
        }
        var d = dlq
        if d.topic.isEmpty { d.topic = (source.topics.first ?? name) + ".dlq" }
        if let first = entities.first { sink.keyPrefix = first.keyPrefix }
        var t = Topology(name: name, source: source, key: key, time: time, allowedLatenessMs: lateness,
                         features: features, sink: sink, deadLetter: d, maxEventBytes: maxBytes, derived: derived,
                         keyHashing: hashing.hashing)
        t.entities = entities
        if source.schemaFile != nil || source.descriptorFile != nil {
            if entities.isEmpty {
                checkFixedSchema(t, sourceNode: m["source"])
            } else {
                for e in entities { checkFixedSchema(t.entity(named: e.name)!, sourceNode: m["source"]) }
            }
        }
        return t
    }

    /// `entities: [{name, key, parts, features, derived, prefix}]`.
    mutating func entities(_ node: Node, basePrefix: String) -> [EntitySpec]? {
        guard let seq = node.sequence else {
            report(node, "entities must be a list", fix: "start each entity with '- name: ...', then its key and features")
            return nil
        }
        if seq.isEmpty {
            report(node, "entities is empty", fix: "add at least one entity: `- {name: users, key: user_id, features: [...]}`")
            return nil
        }
        var out: [EntitySpec] = []
        var names: [String: Node] = [:]
        var prefixes: [String: (String, Node)] = [:]
        var ok = true
        for item in seq {
            guard let m = mapping(item, "an entity", allowed: ["name", "key", "parts", "features", "derived", "prefix"]) else {
                ok = false
                continue
            }
            guard let nameNode = m["name"], let name = string(nameNode, "entity name") else {
                if m["name"] == nil { report(item, "entity has no name", fix: "add `name: items`") }
                ok = false
                continue
            }
            if name.isEmpty || !name.allSatisfy({ ($0.isLetter || $0.isNumber || $0 == "_") && $0.isASCII }) {
                report(nameNode, "entity name '\(name)' may only use letters, digits and '_'",
                       fix: "it names the entity's Function (eddy_<topology>_<entity>_features) and default prefix")
                ok = false
            } else if let first = names[name] {
                report(nameNode, "duplicate entity name '\(name)' (first defined on line \(first.mark?.line ?? 0))",
                       fix: "give each entity a unique name")
                ok = false
            }
            let duplicate = names[name] != nil
            names[name] = names[name] ?? nameNode
            var key: KeySource? = nil
            if let k = m["key"] {
                key = self.key(k)
            } else {
                report(item, "entity '\(name)' has no key", fix: "add `key: item_id` (a field), `key: [user_id, category]` (composite) or `key: kafka`")
            }
            var parts: PartsMode? = nil
            if let key { parts = key == .messageKey ? .one : .perPartition }
            if let p = m["parts"], let s = string(p, "parts") {
                if let mode = PartsMode(rawValue: s) {
                    parts = mode
                } else {
                    report(p, "parts '\(s)' is not one or per_partition",
                           fix: "per_partition (the default unless the key is the Kafka message key) keeps a part per source partition; one asserts the topic is keyed by this key")
                    parts = nil
                }
            }
            var features: [FeatureSpec]? = nil
            if let f = m["features"] {
                if let seq = f.sequence, seq.isEmpty {
                    report(f, "entity '\(name)' has no features (features is empty)", fix: "add at least one feature, or remove the entity")
                } else {
                    features = self.features(f)
                }
            } else {
                report(item, "entity '\(name)' has no features", fix: "add `features: [...]` with at least one feature")
            }
            let derived: [DerivedSpec]? = m["derived"] == nil ? [] : self.derived(m["derived"]!, features: features)
            let prefix = m["prefix"].map { string($0, "prefix") } ?? basePrefix + name + ":"
            if let prefix, !duplicate {
                if let (other, _) = prefixes[prefix] {
                    report(m["prefix"] ?? nameNode, "entity '\(name)' has the prefix '\(prefix)' of entity '\(other)'",
                           fix: "give each entity its own prefix, so their keys do not overwrite each other")
                    ok = false
                } else {
                    prefixes[prefix] = (name, m["prefix"] ?? nameNode)
                }
            }
            guard let key, let parts, let features, let derived, let prefix else { ok = false; continue }
            out.append(EntitySpec(name: name, key: key, parts: parts, features: features, derived: derived, keyPrefix: prefix))
        }
        return ok ? out : nil
    }

    mutating func source(_ node: Node, topologyName: String) -> SourceConfig? {
        guard let m = mapping(node, "source", allowed: ["brokers", "topic", "topics", "group", "format", "properties",
                                                        "schema_registry", "schema", "descriptor", "message"]) else { return nil }
        let brokers = m["brokers"].map { string($0, "source.brokers") } ?? "localhost:9092"
        var topics: [String] = []
        if let t = m["topic"], let s = string(t, "source.topic") { topics.append(s) }
        if let t = m["topics"] {
            if let seq = t.sequence {
                for item in seq { if let s = string(item, "source.topics") { topics.append(s) } }
            } else if let s = string(t, "source.topics") {
                topics.append(contentsOf: s.split(separator: ",").map { String($0).trimmingCharacters(in: " ") })
            }
        }
        if topics.isEmpty { report(node, "source names no topic", fix: "add `topic: NAME` (or `topics: [A, B]`)") }
        let group = m["group"].map { string($0, "source.group") } ?? "eddy-\(topologyName)"
        let format = m["format"].map { string($0, "source.format") } ?? "json"
        var formatOK = true
        if let format, !["json", "avro", "protobuf"].contains(format) {
            report(m["format"], "source.format '\(format)' is not supported", fix: "use json, avro or protobuf")
            formatOK = false
        }
        let binary = formatOK ? formatSettings(m, format: format ?? "json") : nil
        if binary == nil { formatOK = false }
        var props: [String: String] = [:]
        if let p = m["properties"] {
            if let pm = p.mapping {
                for (k, v) in pm { if let ks = k.scalar?.string, let vs = string(v, "source.properties.\(ks)") { props[ks] = vs } }
            } else {
                report(p, "source.properties must be a mapping of librdkafka properties", fix: "e.g. properties: {fetch.min.bytes: \"1\"}")
            }
        }
        guard let brokers, let group, let format, formatOK else { return nil }
        return SourceConfig(brokers: brokers, topics: topics, group: group, properties: props, format: format,
                            schemaRegistry: binary?.registry, schemaFile: binary?.schemaFile,
                            descriptorFile: binary?.descriptorFile, message: binary?.message)
    }

    mutating func key(_ node: Node) -> KeySource? {
        if let seq = node.sequence {
            // A composite key: `[user_id, category]`.
            guard !seq.isEmpty else {
                report(node, "key is an empty list", fix: "name the key's fields: `key: [user_id, category]`")
                return nil
            }
            var paths: [FieldPath] = []
            var ok = true
            for item in seq {
                guard let s = string(item, "a key field") else { ok = false; continue }
                if s == "kafka" {
                    report(item, "the Kafka message key cannot be part of a composite key",
                           fix: "use `key: kafka` alone, or name the fields: `key: [user_id, category]`")
                    ok = false
                    continue
                }
                guard let p = fieldPath(item, "a key field") else { ok = false; continue }
                if paths.contains(p) {
                    report(item, "key field '\(p)' appears twice in the key", fix: "keep one of them")
                    ok = false
                    continue
                }
                paths.append(p)
            }
            guard ok else { return nil }
            return paths.count == 1 ? .field(paths[0]) : .fields(paths)
        }
        if node.scalar != nil {
            guard let s = string(node, "key") else { return nil }
            if s == "kafka" { return .messageKey }
            return fieldPath(node, "key").map { .field($0) }
        }
        guard let m = mapping(node, "key", allowed: ["field", "kafka", "hash", "salt"]) else { return nil }
        if let f = m["field"] { return fieldPath(f, "key.field").map { .field($0) } }
        if m["kafka"] != nil { return .messageKey }
        report(node, "key names no field", fix: "write `key: user_id`, or `key: kafka` for the Kafka message key")
        return nil
    }

    /// `key: {field: email, hash: sha256, salt: ${EDDY_KEY_SALT}}`: nil without `hash` (and
    /// `salt`), reported when either is wrong or alone.
    mutating func keyHashing(_ node: Node) -> (ok: Bool, hashing: KeyHashing?) {
        guard let m = node.mapping.map({ Dictionary($0.map { ($0.key.scalar?.string ?? "", $0.value) }, uniquingKeysWith: { a, _ in a }) }),
              m["hash"] != nil || m["salt"] != nil
        else { return (true, nil) }
        let saltFix = "set `salt: ${EDDY_KEY_SALT}` and export EDDY_KEY_SALT, e.g. from `openssl rand -hex 32` (keep it secret and fixed: a new salt changes every entity key)"
        guard let hashNode = m["hash"] else {
            report(m["salt"], "key has a salt but no hash", fix: "add `hash: sha256`")
            return (false, nil)
        }
        guard let name = string(hashNode, "key.hash") else { return (false, nil) }
        guard let algorithm = KeyHashing.Algorithm(rawValue: name.lowercased()) else {
            report(hashNode, "unknown key.hash '\(name)'",
                   fix: "use \(KeyHashing.Algorithm.allCases.map(\.rawValue).joined(separator: ", ")) (HMAC-SHA256 with the salt)")
            return (false, nil)
        }
        guard let saltNode = m["salt"] else {
            report(hashNode, "key.hash needs a salt", fix: saltFix)
            return (false, nil)
        }
        guard let salt = string(saltNode, "key.salt") else { return (false, nil) }
        guard salt.utf8.count >= KeyHashing.minimumSaltBytes else {
            report(saltNode, salt.isEmpty ? "key.salt is empty" : "key.salt is \(salt.utf8.count) bytes; at least \(KeyHashing.minimumSaltBytes) are needed",
                   fix: saltFix)
            return (false, nil)
        }
        return (true, KeyHashing(algorithm: algorithm, salt: Array(salt.utf8)))
    }

    mutating func time(_ node: Node) -> TimeSource? {
        if node.scalar != nil {
            guard let s = string(node, "time") else { return nil }
            if s == "kafka" { return .messageTimestamp }
            return fieldPath(node, "time").map { .field($0, .milliseconds) }
        }
        guard let m = mapping(node, "time", allowed: ["field", "unit"]) else { return nil }
        guard let f = m["field"] else {
            report(node, "time names no field", fix: "write `time: {field: ts, unit: ms}`, or `time: kafka` for the Kafka timestamp")
            return nil
        }
        let path = fieldPath(f, "time.field")
        var unit = TimeUnit.milliseconds
        if let u = m["unit"], let s = string(u, "time.unit") {
            guard let parsed = TimeUnit(rawValue: s) else {
                report(u, "unknown time unit '\(s)'", fix: "use ms, s or rfc3339")
                return nil
            }
            unit = parsed
        }
        return path.map { .field($0, unit) }
    }

    mutating func sink(_ node: Node, topologyName: String) -> SinkConfig? {
        guard let m = mapping(node, "sink", allowed: ["redis", "prefix", "ttl", "flush_interval", "layout"]) else { return nil }
        let url = m["redis"].map { string($0, "sink.redis") } ?? "redis://127.0.0.1:6379"
        let prefix = m["prefix"].map { string($0, "sink.prefix") } ?? "\(topologyName):"
        let ttl = m["ttl"].map { duration($0, "sink.ttl") } ?? 7 * 86_400_000
        let flush = m["flush_interval"].map { duration($0, "sink.flush_interval") } ?? 5
        if let flush, flush < 1 { report(m["flush_interval"], "sink.flush_interval must be at least 1ms") }
        var layout = StoredLayout.full
        if let node = m["layout"], let text = string(node, "sink.layout") {
            guard let parsed = StoredLayout(rawValue: text) else {
                report(node, "unknown sink.layout '\(text)'",
                       fix: "use full (the default: point features stored as hash fields, shown by HGETALL) or lean (only _state, _fp and the fences: cheaper writes; features only through the Function, eddy get and HTTP)")
                return nil
            }
            layout = parsed
        }
        guard let url, let prefix, let ttl, let flush, flush >= 1 else { return nil }
        return SinkConfig(redisURL: url, keyPrefix: prefix, ttlMs: ttl, flushIntervalMs: flush, layout: layout)
    }

    mutating func deadLetter(_ node: Node) -> DeadLetterConfig? {
        guard let m = mapping(node, "dead_letter", allowed: ["topic", "enabled"]) else { return nil }
        let topic = m["topic"].map { string($0, "dead_letter.topic") } ?? ""
        let enabled = m["enabled"].map { bool($0, "dead_letter.enabled") } ?? true
        guard let topic, let enabled else { return nil }
        return DeadLetterConfig(topic: topic, enabled: enabled)
    }

    mutating func features(_ node: Node) -> [FeatureSpec]? {
        guard let seq = node.sequence else {
            report(node, "features must be a list", fix: "start each feature with '- name: ...'")
            return nil
        }
        if seq.isEmpty { report(node, "features is empty", fix: "add at least one feature") }
        var out: [FeatureSpec] = []
        var columns: [String: Node] = [:]
        var ok = true
        for item in seq {
            guard let f = feature(item) else { ok = false; continue }
            for c in f.outputNames {
                if ["key", "ts", "key_time"].contains(c) {
                    report(item, "feature column '\(c)' clashes with a reserved output name", fix: "rename the feature")
                    ok = false
                } else if let first = columns[c] {
                    let line = first.mark?.line ?? 0
                    report(item, "duplicate feature name '\(c)' (first defined on line \(line))", fix: "give each feature a unique name")
                    ok = false
                }
                columns[c] = item
            }
            out.append(f)
        }
        return ok ? out : nil
    }

    static let kinds = [
        "last_n", "session", "count", "sum", "min", "max", "avg",
        "distinct_count", "percentile", "first", "last", "variance", "stddev", "count_by", "time_since",
    ]

    /// Every option a feature may have besides name, kind and where.
    static let options = [
        "field", "n", "distinct", "gap", "window", "hop",
        "precision", "exact_limit", "quantiles", "relative_accuracy", "top", "max_values",
    ]

    /// The options each kind takes.
    static func applicable(_ kind: String) -> Set<String> {
        switch kind {
        case "last_n": return ["field", "n", "distinct"]
        case "session": return ["gap"]
        case "count", "sum", "min", "max", "avg", "first", "last", "variance", "stddev": return ["field", "window", "hop"]
        case "distinct_count": return ["field", "window", "hop", "precision", "exact_limit"]
        case "percentile": return ["field", "window", "hop", "quantiles", "relative_accuracy"]
        case "count_by": return ["field", "window", "hop", "top", "max_values"]
        case "time_since": return []
        default: return Set(options)
        }
    }

    mutating func feature(_ node: Node) -> FeatureSpec? {
        let keys = ["name", "kind", "where"] + Self.options
        guard let m = mapping(node, "a feature", allowed: keys) else { return nil }
        guard let nameNode = m["name"], let name = string(nameNode, "feature name") else {
            if m["name"] == nil { report(node, "feature has no name", fix: "add `name: clicks_1h`") }
            return nil
        }
        if name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
            report(nameNode, "feature name '\(name)' may only use letters, digits and '_'")
            return nil
        }
        guard let kindNode = m["kind"], let kind = string(kindNode, "feature kind") else {
            if m["kind"] == nil { report(node, "feature '\(name)' has no kind", fix: "add `kind:` one of \(Self.kinds.joined(separator: ", "))") }
            return nil
        }
        var filter: FilterExpr?
        var badFilter = false
        if let w = m["where"], let text = string(w, "where") {
            do {
                filter = try FilterParser.parse(text)
                for p in filter?.fieldPaths ?? [] where pathNodes[p] == nil { pathNodes[p] = w }
            } catch {
                let mark = w.mark
                let quoted = w.scalar?.style == .doubleQuoted || w.scalar?.style == .singleQuoted
                diagnostics.append(Diagnostic(
                    file: file, line: mark?.line ?? 1, column: (mark?.column ?? 1) + error.offset + (quoted ? 1 : 0),
                    message: "bad filter syntax in feature '\(name)': \(error.message)",
                    fix: "filters look like: event == \"click\" and (price > 10 or country in [\"DE\", \"FR\"])"))
                badFilter = true  // keep checking the rest of the feature
            }
        }
        guard let spec = featureKind(node, m, name: name, kind: kind, kindNode: kindNode, filter: filter) else { return nil }
        return badFilter ? nil : spec
    }

    mutating func featureKind(
        _ node: Node, _ m: [String: Node], name: String, kind: String, kindNode: Node, filter: FilterExpr?
    ) -> FeatureSpec? {
        if Self.kinds.contains(kind) {
            let takes = Self.applicable(kind)
            for n in Self.options where m[n] != nil && !takes.contains(n) {
                let fix = takes.isEmpty
                    ? "remove it (a \(kind) feature takes only name, kind and where)"
                    : "remove it (a \(kind) feature takes \(Self.options.filter(takes.contains).joined(separator: ", ")))"
                report(m[n], "'\(n)' does not apply to a \(kind) feature", fix: fix)
            }
        }
        switch kind {
        case "last_n":
            guard let fieldNode = m["field"] else { report(node, "last_n feature '\(name)' needs a field", fix: "add `field: item_id`"); return nil }
            let field = fieldPath(fieldNode, "field")
            let n = m["n"].map { integer($0, "n", range: 1...1000) } ?? 10
            let distinct = m["distinct"].map { bool($0, "distinct") } ?? false
            guard let field, let n, let distinct else { return nil }
            return FeatureSpec(name: name, kind: .lastN(field: field, n: n, distinct: distinct), filter: filter)
        case "session":
            guard let gapNode = m["gap"] else { report(node, "session feature '\(name)' needs a gap", fix: "add `gap: 30m`"); return nil }
            guard let gap = duration(gapNode, "gap") else { return nil }
            guard gap > 0 else { report(gapNode, "gap must be longer than 0"); return nil }
            return FeatureSpec(name: name, kind: .session(gapMs: gap), filter: filter)
        case "count", "sum", "min", "max", "avg":
            let agg = Aggregation(rawValue: kind)!
            var field: FieldPath?
            if let f = m["field"] {
                guard let p = fieldPath(f, "field") else { return nil }
                field = p
            } else if agg != .count {
                report(node, "\(kind) feature '\(name)' needs a numeric field", fix: "add `field: price`")
                return nil
            }
            guard let (window, hop) = windowAndHop(m) else { return nil }
            return FeatureSpec(name: name, kind: .window(agg, field: field, windowMs: window, hopMs: hop), filter: filter)
        case "distinct_count", "percentile", "first", "last", "variance", "stddev", "count_by":
            guard let f = m["field"] else {
                report(node, "\(kind) feature '\(name)' needs a field", fix: "add `field: \(kind == "distinct_count" || kind == "count_by" ? "merchant_id" : "amount")`")
                return nil
            }
            let field = fieldPath(f, "field")
            let span = windowAndHop(m)
            var agg: TileAggregation?
            switch kind {
            case "distinct_count":
                let precision = m["precision"].map { integer($0, "precision", range: 4...16, fix: "HyperLogLog precision p gives 2^p registers; the default is 12") } ?? 12
                let limit = m["exact_limit"].map { integer($0, "exact_limit", range: 0...4096, fix: "members kept exactly per tile before switching to registers; the default is 64") } ?? 64
                if let precision, let limit { agg = .distinctCount(precision: precision, exactLimit: limit) }
            case "percentile":
                let quantiles = m["quantiles"].map { self.quantiles($0) } ?? [0.5, 0.9, 0.99]
                let accuracy = m["relative_accuracy"].map {
                    number($0, "relative_accuracy", valid: { $0 >= 0.0001 && $0 <= 0.5 }, range: "from 0.0001 to 0.5",
                           fix: "a relative accuracy such as 0.01 (1%, the default)")
                } ?? 0.01
                if let quantiles, let accuracy { agg = .percentile(quantiles: quantiles, relativeAccuracy: accuracy) }
            case "count_by":
                let top = m["top"].map { integer($0, "top", range: 1...1000, fix: "how many texts a read returns; the default is 10") } ?? 10
                let maxValues = m["max_values"].map { integer($0, "max_values", range: 1...4096, fix: "distinct texts counted per tile before __other__; the default is 64") } ?? 64
                if let top, let maxValues { agg = .countBy(top: top, maxValues: maxValues) }
            case "first": agg = .first
            case "last": agg = .last
            case "variance": agg = .variance
            default: agg = .stddev
            }
            guard let field, let span, let agg else { return nil }
            return FeatureSpec(name: name, kind: .tiled(agg, field: field, windowMs: span.0, hopMs: span.1), filter: filter)
        case "time_since":
            for n in Self.options where m[n] != nil { return nil }  // reported above
            return FeatureSpec(name: name, kind: .timeSince, filter: filter)
        default:
            let hint = closest(kind, in: Self.kinds).map { "did you mean '\($0)'? " } ?? ""
            report(kindNode, "unknown feature kind '\(kind)'", fix: "\(hint)kinds are: \(Self.kinds.joined(separator: ", "))")
            return nil
        }
    }

    /// `window` and `hop` (default: a twelfth of the window) in ms; `(0, 0)`
    /// without a window, a lifetime aggregate. Nil after reporting a problem.
    mutating func windowAndHop(_ m: [String: Node]) -> (Int64, Int64)? {
        guard let wNode = m["window"] else {
            if let hNode = m["hop"] {
                report(hNode, "hop without a window", fix: "add `window:` (a multiple of the hop), or remove `hop` for a lifetime aggregate")
                return nil
            }
            return (0, 0)
        }
        guard let window = duration(wNode, "window") else { return nil }
        guard window > 0 else { report(wNode, "window must be longer than 0", fix: "remove `window` for a lifetime aggregate"); return nil }
        if let hNode = m["hop"] {
            guard let h = duration(hNode, "hop") else { return nil }
            guard h > 0 else { report(hNode, "hop must be longer than 0"); return nil }
            guard window % h == 0 else {
                report(hNode, "window \(formatDuration(window)) is not a multiple of hop \(formatDuration(h))",
                       fix: "choose a hop that divides the window, e.g. \(formatDuration(window / 12 > 0 && window % 12 == 0 ? window / 12 : window))")
                return nil
            }
            return (window, h)
        }
        guard window % 12 == 0 else {
            report(wNode, "window \(formatDuration(window)) cannot be split into 12 hops (the default)",
                   fix: "add a `hop:` that divides the window")
            return nil
        }
        return (window, window / 12)
    }

    /// A number option satisfying `valid`.
    mutating func number(_ node: Node, _ what: String, valid: (Double) -> Bool, range: String, fix: String) -> Double? {
        guard let s = string(node, what) else { return nil }
        guard let v = Double(s), v.isFinite, valid(v) else {
            report(node, "\(what) must be a number \(range), not '\(s)'", fix: fix)
            return nil
        }
        return v
    }

    /// `quantiles`: a non-empty list of numbers strictly between 0 and 1,
    /// each once.
    mutating func quantiles(_ node: Node) -> [Double]? {
        guard let seq = node.sequence else {
            report(node, "quantiles must be a list of numbers between 0 and 1", fix: "write `quantiles: [0.5, 0.99]`")
            return nil
        }
        guard !seq.isEmpty else {
            report(node, "quantiles is empty", fix: "list at least one, like `quantiles: [0.5, 0.99]`, or remove it for [0.5, 0.9, 0.99]")
            return nil
        }
        var out: [Double] = []
        var ok = true
        for item in seq {
            guard let q = number(item, "a quantile", valid: { $0 > 0 && $0 < 1 }, range: "strictly between 0 and 1",
                                 fix: "write quantiles as fractions: 0.99 for p99, 0.999 for p99.9") else { ok = false; continue }
            if out.contains(q) { report(item, "quantile \(q) appears twice", fix: "keep one of them"); ok = false; continue }
            out.append(q)
        }
        return ok ? out : nil
    }
}

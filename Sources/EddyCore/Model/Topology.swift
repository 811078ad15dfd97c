/// A compiled topology: where events come from, how to read their key and
/// time, which features to compute and where to write them.
///
/// Built by `EddyTopology` from a YAML file; the core only reads it.
public struct Topology: Sendable, Equatable {
    public var name: String
    public var source: SourceConfig
    public var key: KeySource
    /// `key: {..., hash: sha256, salt: ...}`: entity keys are the raw keys' HMACs.
    public var keyHashing: KeyHashing?
    public var time: TimeSource
    /// Events with `ts < K - allowedLatenessMs` are late (SEMANTICS.md).
    public var allowedLatenessMs: Int64
    public var features: [FeatureSpec]
    /// Columns computed at read time from the feature columns, written
    /// after them, in this order (SEMANTICS.md, Derived features).
    public var derived: [DerivedSpec]
    public var sink: SinkConfig
    public var deadLetter: DeadLetterConfig
    /// Messages larger than this are invalid (`message_too_large`).
    public var maxEventBytes: Int
    /// The `entities:` form: every entity with its own key, features,
    /// derived columns, prefix and Function. Empty in the single-key form.
    /// In the entities form `key`, `features`, `derived` and `sink.keyPrefix`
    /// above are the first entity's; use `entity(named:)` to work on one.
    public var entities: [EntitySpec] = []
    /// How a key's state is kept across source partitions (SEMANTICS.md,
    /// Keys spread over partitions). `.one` in the single-key form.
    public var parts: PartsMode = .one
    /// Set on a topology made by `entity(named:)`: the entity's name.
    public var entityName: String?

    public init(
        name: String, source: SourceConfig, key: KeySource, time: TimeSource,
        allowedLatenessMs: Int64, features: [FeatureSpec], sink: SinkConfig,
        deadLetter: DeadLetterConfig, maxEventBytes: Int = 1 << 20, derived: [DerivedSpec] = [],
        keyHashing: KeyHashing? = nil
    ) {
        self.keyHashing = keyHashing
        self.name = name
        self.source = source
        self.key = key
        self.time = time
        self.allowedLatenessMs = allowedLatenessMs
        self.features = features
        self.sink = sink
        self.deadLetter = deadLetter
        self.maxEventBytes = maxEventBytes
        self.derived = derived
    }

    /// Every output column after `key` and `ts`/`key_time`: the feature
    /// columns, then the derived columns.
    public var outputColumns: [String] { features.flatMap(\.outputNames) + derived.map(\.name) }

    /// The entity key of a raw key: itself, or its HMAC with `keyHashing`.
    public func entityKey(_ raw: String) -> String { keyHashing.map { $0.entityKey(raw) } ?? raw }

    /// Whether the topology uses the `entities:` form.
    public var isMultiEntity: Bool { !entities.isEmpty }

    /// The topology of each entity: itself in the single-key form, else
    /// `entity(named:)` of each of `entities`, in order.
    public var entityTopologies: [Topology] {
        isMultiEntity ? entities.map { entity(named: $0.name)! } : [self]
    }

    /// The single-entity topology of entity `name`: its key, parts,
    /// features, derived columns and prefix, and the name
    /// `<topology>_<entity>`, so its Function is
    /// `eddy_<topology>_<entity>_features`. Nil for an unknown name.
    public func entity(named name: String) -> Topology? {
        guard let e = entities.first(where: { $0.name == name }) else { return nil }
        var t = self
        t.name = self.name + "_" + e.name
        t.key = e.key
        t.parts = e.parts
        t.features = e.features
        t.derived = e.derived
        t.sink.keyPrefix = e.keyPrefix
        t.entities = []
        t.entityName = e.name
        return t
    }
}

/// How a key's state is kept across the source's partitions.
public enum PartsMode: String, Sendable, Equatable {
    /// One state per key: the key's events all come from one partition
    /// (the key is the Kafka message key, or the topic is keyed by it).
    case one
    /// One part per (key, source partition), merged at read time.
    case perPartition = "per_partition"
}

/// One entity of the `entities:` form.
public struct EntitySpec: Sendable, Equatable {
    public var name: String
    public var key: KeySource
    public var parts: PartsMode
    public var features: [FeatureSpec]
    public var derived: [DerivedSpec]
    /// Prepended to the entity's stored key text in Redis.
    public var keyPrefix: String

    public init(name: String, key: KeySource, parts: PartsMode, features: [FeatureSpec], derived: [DerivedSpec], keyPrefix: String) {
        self.name = name
        self.key = key
        self.parts = parts
        self.features = features
        self.derived = derived
        self.keyPrefix = keyPrefix
    }
}

/// Where a topology's events come from.
public struct SourceConfig: Sendable, Equatable {
    public var brokers: String
    public var topics: [String]
    public var group: String
    /// Extra librdkafka properties, passed through unchanged.
    public var properties: [String: String]
    /// `json`, `avro` or `protobuf`.
    public var format: String
    /// Avro and Protobuf: where writer schemas come from, by the id in each
    /// message (Confluent wire format).
    public var schemaRegistry: SchemaRegistrySettings?
    /// Avro without a registry: the `.avsc` file every message is written
    /// with (bare datums). An absolute path.
    public var schemaFile: String?
    /// Protobuf without a registry: a FileDescriptorSet and the message
    /// type every message is (bare messages).
    public var descriptorFile: String?
    public var message: String?

    public init(brokers: String, topics: [String], group: String, properties: [String: String] = [:], format: String = "json",
                schemaRegistry: SchemaRegistrySettings? = nil, schemaFile: String? = nil, descriptorFile: String? = nil,
                message: String? = nil) {
        self.brokers = brokers
        self.topics = topics
        self.group = group
        self.properties = properties
        self.format = format
        self.schemaRegistry = schemaRegistry
        self.schemaFile = schemaFile
        self.descriptorFile = descriptorFile
        self.message = message
    }
}

/// A Confluent-compatible schema registry (`source.schema_registry`).
public struct SchemaRegistrySettings: Sendable, Equatable {
    public var url: String
    public var username: String?
    public var password: String?
    /// PEM bundle of the CAs to trust for an https URL.
    public var caFile: String?

    public init(url: String, username: String? = nil, password: String? = nil, caFile: String? = nil) {
        self.url = url
        self.username = username
        self.password = password
        self.caFile = caFile
    }
}

/// Where an event's entity key comes from.
public enum KeySource: Sendable, Equatable {
    case field(FieldPath)
    case messageKey
    /// A composite key (two or more fields). The stored key text is each
    /// part's text with `\` written `\\` and `|` written `\|`, the parts
    /// joined by `|` (see `CompositeKey`).
    case fields([FieldPath])

    /// The field paths the key reads.
    public var paths: [FieldPath] {
        switch self {
        case .field(let p): return [p]
        case .messageKey: return []
        case .fields(let ps): return ps
        }
    }
}

/// The stored key text of a composite key.
public enum CompositeKey {
    /// Appends `part` escaped (`\` -> `\\`, `|` -> `\|`).
    @inline(__always)
    public static func appendEscaped(_ part: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>, at n: inout Int) {
        for c in part {
            if c == UInt8(ascii: "\\") || c == UInt8(ascii: "|") { out[n] = UInt8(ascii: "\\"); n += 1 }
            out[n] = c
            n += 1
        }
    }

    /// The key text of `parts` (for tests and tools).
    public static func text(_ parts: [String]) -> String {
        var out = ""
        for (i, p) in parts.enumerated() {
            if i > 0 { out += "|" }
            for c in p {
                if c == "\\" || c == "|" { out += "\\" }
                out.append(c)
            }
        }
        return out
    }
}

/// Unit of an event-time field.
public enum TimeUnit: String, Sendable, Equatable {
    case milliseconds = "ms"
    case seconds = "s"
    case rfc3339
}

/// Where an event's time comes from.
public enum TimeSource: Sendable, Equatable {
    case field(FieldPath, TimeUnit)
    case messageTimestamp
}

/// Where features are written.
public struct SinkConfig: Sendable, Equatable {
    public var redisURL: String
    public var keyPrefix: String
    /// Entities idle longer than this expire from Redis; 0 disables the TTL.
    public var ttlMs: Int64
    /// How often dirty keys are flushed to Redis.
    public var flushIntervalMs: Int64
    /// Which fields an entity's hash holds (`sink.layout`).
    public var layout: StoredLayout

    public init(redisURL: String, keyPrefix: String, ttlMs: Int64, flushIntervalMs: Int64 = 5,
                layout: StoredLayout = .full) {
        self.redisURL = redisURL
        self.keyPrefix = keyPrefix
        self.ttlMs = ttlMs
        self.flushIntervalMs = flushIntervalMs
        self.layout = layout
    }
}

/// Which fields an entity's Redis hash holds (`sink.layout`).
public enum StoredLayout: String, Sendable, Equatable, CaseIterable {
    /// The state blob, `_fp`, `_K`, the fences, and every point feature
    /// (one that does not depend on the read time) as a field of its own,
    /// so `HGETALL` shows them. The default.
    case full
    /// Only the state blob, `_fp` and the fences: each write carries a
    /// third of the fields, which costs Redis about a quarter less CPU per
    /// entity write (Benchmarks/README.md, "Write cost per entity"). Every feature is still read
    /// through the Function (`eddy get`, HTTP, `FCALL`), which folds
    /// `_state`; `HGETALL` shows no feature values.
    case lean
}

/// Where invalid and late events go.
public struct DeadLetterConfig: Sendable, Equatable {
    /// Kafka topic; empty means `<first source topic>.dlq`.
    public var topic: String
    public var enabled: Bool

    public init(topic: String, enabled: Bool = true) {
        self.topic = topic
        self.enabled = enabled
    }
}

/// A dotted path into a JSON event, such as `user.id`.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    public var components: [String]

    public init(_ components: [String]) { self.components = components }

    /// Splits `a.b.c` on dots.
    public init(dotted: String) {
        self.components = dotted.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    public var description: String { components.joined(separator: ".") }
}

import EddyCore
import EddyTopology
import Testing

/// The `entities:` form (issue 19): several entities per topology,
/// composite keys, parts, per-entity prefix and Function, diagnostics.
@Suite struct EntitiesTests {
    let head = """
        name: shop
        source: {brokers: "b:9092", topic: clicks}
        time: {field: ts, unit: ms}
        sink: {redis: "redis://127.0.0.1:6379", prefix: "shop:"}

        """

    func load(_ text: String) throws(TopologyErrors) -> Topology {
        try TopologyLoader(environment: [:]).parse(text, file: "t.yaml")
    }

    func errors(_ text: String) -> [Diagnostic] {
        do {
            _ = try load(text)
            return []
        } catch {
            return error.diagnostics
        }
    }

    @Test func entitiesForm() throws {
        let t = try load(head + """
            entities:
              - name: users
                key: kafka
                features:
                  - {name: clicks_1h, kind: count, window: 1h}
              - name: items
                key: item_id
                features:
                  - {name: views_1h, kind: count, window: 1h}
                  - {name: viewers_1h, kind: distinct_count, field: user_id, window: 1h}
                derived:
                  - {name: views_per_viewer, expr: views_1h / viewers_1h}
              - name: user_category
                key: [user_id, category]
                parts: one
                prefix: "uc:"
                features:
                  - {name: n, kind: count}
            """)
        #expect(t.isMultiEntity)
        #expect(t.entities.map(\.name) == ["users", "items", "user_category"])
        #expect(t.entities.map(\.parts) == [.one, .perPartition, .one])
        #expect(t.entities.map(\.keyPrefix) == ["shop:users:", "shop:items:", "uc:"])
        #expect(t.entities[2].key == .fields([FieldPath(["user_id"]), FieldPath(["category"])]))

        let items = try #require(t.entity(named: "items"))
        #expect(items.name == "shop_items")  // Function eddy_shop_items_features
        #expect(items.entityName == "items")
        #expect(items.key == .field(FieldPath(["item_id"])))
        #expect(items.parts == .perPartition)
        #expect(items.sink.keyPrefix == "shop:items:")
        #expect(items.outputColumns == ["views_1h", "viewers_1h", "views_per_viewer"])
        #expect(!items.isMultiEntity)
        #expect(t.entity(named: "nope") == nil)

        let plan = t.planDescription
        #expect(plan.contains("entity items"))
        #expect(plan.contains("function     eddy_shop_items_features"))
        #expect(plan.contains("per_partition"))
        #expect(plan.contains("composite [user_id, category]"))
    }

    @Test func singleKeyFormIsUnchanged() throws {
        let t = try load(head + "key: user_id\nfeatures:\n  - {name: n, kind: count}\n")
        #expect(!t.isMultiEntity)
        #expect(t.parts == .one)
        #expect(t.entityName == nil)
        #expect(t.sink.keyPrefix == "shop:")
        #expect(t.key == .field(FieldPath(["user_id"])))
    }

    @Test func duplicateEntityNames() {
        let d = errors(head + """
            entities:
              - name: items
                key: item_id
                features: [{name: n, kind: count}]
              - name: items
                key: sku
                features: [{name: m, kind: count}]
            """)
        #expect(d.count == 1)
        #expect(d[0].description.hasPrefix("t.yaml:9:11: error: duplicate entity name 'items' (first defined on line 6)"))
        #expect(d[0].fix == "give each entity a unique name")
    }

    @Test func emptyFeaturesAndMissingParts() {
        let d = errors(head + """
            entities:
              - name: items
                key: item_id
                features: []
              - name: users
                features: [{name: n, kind: count}]
            """)
        #expect(d.count == 2)
        #expect(d[0].line == 8 && d[0].column == 15)
        #expect(d[0].message == "entity 'items' has no features (features is empty)")
        #expect(d[0].fix != nil)
        #expect(d[1].message == "entity 'users' has no key")
        #expect(d[1].line == 9)
    }

    @Test func unknownKeyFieldsAndOptions() {
        let d = errors(head + """
            entities:
              - name: items
                keys: item_id
                parts: some
                features: [{name: n, kind: count}]
              - name: uc
                key: [user_id, kafka, user_id]
                features: [{name: n, kind: count}]
            """)
        let messages = d.map(\.message)
        #expect(messages.contains("unknown key 'keys' in an entity"))
        #expect(d.first { $0.message == "unknown key 'keys' in an entity" }?.fix == "did you mean 'key'?")
        let keys = d.first { $0.message == "unknown key 'keys' in an entity" }
        #expect(keys?.line == 7 && keys?.column == 5)
        #expect(messages.contains("parts 'some' is not one or per_partition"))
        #expect(messages.contains("the Kafka message key cannot be part of a composite key"))
        #expect(messages.contains("key field 'user_id' appears twice in the key"))
        let twice = d.first { $0.message.hasPrefix("key field 'user_id'") }
        #expect(twice?.line == 11 && twice?.column == 27)
    }

    @Test func topLevelKeyWithEntitiesAndCompositeWithoutThem() {
        let d = errors(head + """
            key: user_id
            entities:
              - {name: items, key: item_id, features: [{name: n, kind: count}]}
            """)
        #expect(d.count == 1)
        #expect(d[0].message == "'key' is set both at the top and through `entities:`")
        #expect(d[0].line == 5)
        let c = errors(head + "key: [user_id, category]\nfeatures:\n  - {name: n, kind: count}\n")
        #expect(c.map(\.message) == ["a composite key needs the entities form"])
    }

    @Test func samePrefixTwice() {
        let d = errors(head + """
            entities:
              - {name: a, key: x, prefix: "p:", features: [{name: n, kind: count}]}
              - {name: b, key: y, prefix: "p:", features: [{name: n, kind: count}]}
            """)
        #expect(d.count == 1)
        #expect(d[0].message == "entity 'b' has the prefix 'p:' of entity 'a'")
        #expect(d[0].line == 7)
    }

    @Test func columnsAreCheckedPerEntity() throws {
        // The same feature name in two entities is fine; twice in one is not.
        _ = try load(head + """
            entities:
              - {name: a, key: x, features: [{name: n, kind: count}]}
              - {name: b, key: y, features: [{name: n, kind: count}]}
            """)
        let d = errors(head + """
            entities:
              - {name: a, key: x, features: [{name: n, kind: count}, {name: n, kind: count}]}
            """)
        #expect(d.first?.message.contains("duplicate feature name 'n'") == true)
    }

    @Test func compositeKeyText() {
        #expect(CompositeKey.text(["u1", "books"]) == "u1|books")
        #expect(CompositeKey.text(["a|b", "c\\d"]) == "a\\|b|c\\\\d")
        #expect(CompositeKey.text(["a", "|b"]) != CompositeKey.text(["a|", "b"]))
    }
}

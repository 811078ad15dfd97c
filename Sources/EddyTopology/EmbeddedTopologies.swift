/// Topologies compiled into the binary, so `eddy run clickstream` works
/// from any directory. A test keeps each equal to its file in Topologies/.
public enum EmbeddedTopologies {
    public static let all: [String: String] = ["clickstream": clickstream]

    public static let clickstream = """
# Clickstream features for recommendations: what a user looked at, their
# current session, and recent clicks and spend.
name: clickstream
source:
  brokers: ${EDDY_BROKERS:-localhost:9092}
  topic: clickstream
  group: eddy-clickstream
  format: json
key: user_id
time:
  field: ts
  unit: ms
allowed_lateness: 5m
features:
  - name: last_items
    kind: last_n
    field: item_id
    n: 10
    where: event == "view"
  - name: session
    kind: session
    gap: 30m
  - name: clicks_1h
    kind: count
    window: 1h
    hop: 5m
    where: event == "click"
  - name: spend_24h
    kind: sum
    field: price
    window: 24h
    hop: 1h
    where: event == "purchase"
sink:
  redis: ${EDDY_REDIS_URL:-redis://127.0.0.1:6379}
  prefix: "clickstream:"
  ttl: 7d
  flush_interval: 5ms
dead_letter:
  topic: clickstream.dlq

"""
}

import EddyCore
import EddyReplay
import Foundation
import PropertyBased
import Testing

/// A deliberately naive reading of SEMANTICS.md's derived features: walk the
/// tree with optionals, apply each rule as written.
enum NaiveDerived {
    static func value(_ e: DerivedExpr, _ env: [String: Double?]) -> Double? {
        func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }
        switch e {
        case .number(let v): return v
        case .column(let c):
            guard let v = env[c] ?? nil, v.isFinite else { return nil }
            return v
        case .unary(.negate, let a): return value(a, env).map { -$0 }
        case .unary(.not, let a): return value(a, env).map { $0 == 0 ? 1 : 0 }
        case .binary(let op, let a, let b):
            guard let x = value(a, env), let y = value(b, env) else { return nil }
            switch op {
            case .add: return finite(x + y)
            case .subtract: return finite(x - y)
            case .multiply: return finite(x * y)
            case .divide: return y == 0 ? nil : finite(x / y)
            case .less: return x < y ? 1 : 0
            case .lessOrEqual: return x <= y ? 1 : 0
            case .greater: return x > y ? 1 : 0
            case .greaterOrEqual: return x >= y ? 1 : 0
            case .equal: return x == y ? 1 : 0
            case .notEqual: return x != y ? 1 : 0
            case .and: return x != 0 && y != 0 ? 1 : 0
            case .or: return x != 0 || y != 0 ? 1 : 0
            }
        case .call(.coalesce, let args):
            for a in args { if let v = value(a, env) { return v } }
            return nil
        case .call(.if, let args):
            guard let c = value(args[0], env) else { return nil }
            return c != 0 ? value(args[1], env) : value(args[2], env)
        case .call(let f, let args):
            let vs = args.map { value($0, env) }
            guard !vs.contains(where: { $0 == nil }) else { return nil }
            let x = vs.map { $0! }
            switch f {
            case .abs: return Swift.abs(x[0])
            case .min: return x.dropFirst().reduce(x[0]) { Swift.min($0, $1) }
            case .max: return x.dropFirst().reduce(x[0]) { Swift.max($0, $1) }
            case .log: return x[0] <= 0 ? nil : finite(Foundation.log(x[0]))
            case .exp: return finite(Foundation.exp(x[0]))
            case .sqrt: return x[0] < 0 ? nil : finite(Foundation.sqrt(x[0]))
            case .pow: return finite(Foundation.pow(x[0], x[1]))
            case .coalesce, .if: fatalError("handled above")
            }
        }
    }
}

/// Random expressions over columns `a`...`e`.
struct ExpressionGenerator {
    var rng: SplitMix64
    static let columns = ["a", "b", "c", "d", "e"]
    static let constants: [Double] = [0, 1, 2, 0.5, 3, 10, 0.1, 1e-300, 1e300, 1e15, 7.25]

    mutating func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }

    mutating func expression(depth: Int) -> DerivedExpr {
        if depth == 0 || rng.next() % 4 == 0 {
            return rng.next() % 3 == 0 ? .number(pick(Self.constants)) : .column(pick(Self.columns))
        }
        switch rng.next() % 4 {
        case 0: return .unary(pick(DerivedUnary.allCases), expression(depth: depth - 1))
        case 1, 2: return .binary(pick(DerivedBinary.allCases), expression(depth: depth - 1), expression(depth: depth - 1))
        default:
            let f = pick(DerivedFunction.allCases)
            let n = f.arity.upperBound == Int.max ? f.arity.lowerBound + Int(rng.next() % 3) : f.arity.lowerBound
            return .call(f, (0..<n).map { _ in expression(depth: depth - 1) })
        }
    }

    mutating func input() -> Double? {
        switch rng.next() % 8 {
        case 0: return nil
        case 1: return 0
        case 2: return -Double(rng.next() % 5)
        case 3: return pick([1e308, -1e308, 5e-324, 0.1, 1e15 + 0.5])
        default: return Double(Int64(rng.next() % 2001) - 1000) / 8
        }
    }
}

@Suite("Derived expressions against a naive model")
struct DerivedPropertyTests {
    @Test func programMatchesNaiveModel() async {
        await propertyCheck(count: 400, input: Gen.int(in: 0...Int(Int32.max))) { seed in
            var g = ExpressionGenerator(rng: SplitMix64(seed: UInt64(seed)))
            let e = g.expression(depth: 5)
            // The printed form parses back to the same tree.
            let reparsed = try? DerivedParser.parse(e.description).expression
            #expect(reparsed == e, "seed \(seed): \(e)")
            let program = DerivedProgram(e) { ExpressionGenerator.columns.firstIndex(of: $0) }
            for _ in 0..<20 {
                let inputs = ExpressionGenerator.columns.map { _ in g.input() }
                let env = Dictionary(uniqueKeysWithValues: zip(ExpressionGenerator.columns, inputs))
                let want = NaiveDerived.value(e, env)
                let got = program.evaluate(inputs)
                #expect(got == want, "seed \(seed): \(e) with \(inputs)")
                if let got { #expect(got.isFinite) }
            }
        }
    }

    /// The engine's derived columns equal the naive model applied to the
    /// feature columns of the same row, for every row of a random replay.
    @Test func engineRowsMatchNaiveModel() throws {
        let body = """
              - {name: n, kind: count, window: 100ms, hop: 10ms}
              - {name: total, kind: sum, field: x, window: 100ms, hop: 10ms}
              - {name: lo, kind: min, field: x, window: 50ms, hop: 10ms}
              - {name: mean, kind: avg, field: x, window: 100ms, hop: 10ms}
              - {name: s, kind: session, gap: 30ms}
              - {name: items, kind: last_n, field: x, n: 2}
            derived:
              - {name: rate, expr: "total / n"}
              - {name: spread, expr: "mean - lo"}
              - {name: z, expr: "if(s_active, sqrt(abs(spread)) * log(n + 1), -1)"}
              - {name: busy, expr: "n >= 3 and not (lo < 0) or s_events > 4"}
              - {name: safe, expr: "coalesce(rate, spread, 0) + pow(2, min(s_events, 10)) / max(s_duration_ms, 1)"}
              - {name: tiny, expr: "exp(-total) * 1e-300 / 3"}
            """
        let topology = try makeTopology(body)
        #expect(topology.derived.map(\.name) == ["rate", "spread", "z", "busy", "safe", "tiny"])
        #expect(topology.outputColumns.suffix(7) == ["items", "rate", "spread", "z", "busy", "safe", "tiny"])
        let session = ReplaySession(topology: topology, emit: .rows)
        #expect(session.columns.suffix(6) == ["rate", "spread", "z", "busy", "safe", "tiny"])
        #expect(session.columns.prefix(3) == ["key", "ts", "n"])

        var rng = SplitMix64(seed: 7)
        var out = JSONWriter()
        var clock: Int64 = 0
        for _ in 0..<3000 {
            clock += Int64(rng.next() % 7)
            let x = Double(Int64(rng.next() % 4001) - 2000) / 16
            let line = "{\"user_id\":\"k\(rng.next() % 20)\",\"ts\":\(clock - Int64(rng.next() % 20)),\"x\":\(x)}"
            Array(line.utf8).withUnsafeBytes { session.consume($0, into: &out) }
        }
        session.endOfInput(into: &out)
        let rows = String(decoding: out.bytes, as: UTF8.self).split(separator: "\n")
        #expect(rows.count > 2500)
        var nonNull = [Int](repeating: 0, count: topology.derived.count)
        for row in rows {
            // Foundation's JSON parser rounds some numbers; read the texts exactly.
            let members = try #require(JSONMembers.members(Array(row.utf8)))
            var object: [String: String] = [:]
            for m in members { object[m.name] = String(decoding: m.value, as: UTF8.self) }
            var env: [String: Double?] = [:]
            for (name, text) in object {
                env[name] = text == "true" ? 1 : text == "false" ? 0 : Double(text)
            }
            for (k, d) in topology.derived.enumerated() {
                let want = NaiveDerived.value(d.expression, env)
                let text = try #require(object[d.name])
                let got = Double(text)
                #expect(got != nil || text == "null", "\(d.name) in \(row)")
                // Numbers are written as the engine writes numbers.
                if let want { #expect(text == formatNumber(want), "\(d.name) in \(row)") }
                #expect(got == want, "\(d.name) in \(row)")
                if got != nil { nonNull[k] += 1 }
                env[d.name] = got
            }
        }
        // Every derived column took values (not only nulls).
        #expect(nonNull.allSatisfy { $0 > 100 }, "\(nonNull)")
    }
}

import EddyCore

/// The derived columns in the Function library: Lua that computes exactly
/// what `EddyCore.DerivedColumns` computes.
///
/// - Inputs are the feature columns' JSON texts in the reply being built
///   (`out[5 + column]`, each `,"name":value`), parsed back: `tonumber`
///   reads the shortest round-trip digits `number()` wrote exactly and
///   gives nil for `null`; a boolean column's `true` is 1, else 0. (So the
///   reply must hold one `out` entry per feature column, in output order.)
/// - Null is nil. The helpers below are `DerivedMath` in Lua, operation
///   for operation; `log`, `exp` and `pow` are C's (Lua's `math.log`,
///   `math.exp`, `math.pow` call them), as in the engine.
/// - Shallow expressions are nested helper calls; deep ones run as stack
///   code over a table `s`, as `DerivedProgram` does, so no expression is
///   too deep for Lua's parser.
enum DerivedLua {
    /// Helpers defined inside `runtime()` (they need `math`).
    static let helpers = #"""
        -- Derived columns (DerivedMath in EddyCore): nil is null, every
        -- non-finite result is null.
        local m_log, m_exp, m_sqrt, m_pow, m_abs = math.log, math.exp, math.sqrt, math.pow, math.abs
        local function d_fin(x)
          if x ~= x or x == huge or x == -huge then return nil end
          return x
        end
        local function d_add(a, b) if a == nil or b == nil then return nil end return d_fin(a + b) end
        local function d_sub(a, b) if a == nil or b == nil then return nil end return d_fin(a - b) end
        local function d_mul(a, b) if a == nil or b == nil then return nil end return d_fin(a * b) end
        local function d_div(a, b)
          if a == nil or b == nil or b == 0 then return nil end
          return d_fin(a / b)
        end
        local function d_neg(a) if a == nil then return nil end return -a end
        local function d_lt(a, b) if a == nil or b == nil then return nil end if a < b then return 1 end return 0 end
        local function d_le(a, b) if a == nil or b == nil then return nil end if a <= b then return 1 end return 0 end
        local function d_gt(a, b) if a == nil or b == nil then return nil end if a > b then return 1 end return 0 end
        local function d_ge(a, b) if a == nil or b == nil then return nil end if a >= b then return 1 end return 0 end
        local function d_eq(a, b) if a == nil or b == nil then return nil end if a == b then return 1 end return 0 end
        local function d_ne(a, b) if a == nil or b == nil then return nil end if a ~= b then return 1 end return 0 end
        local function d_and(a, b)
          if a == nil or b == nil then return nil end
          if a ~= 0 and b ~= 0 then return 1 end
          return 0
        end
        local function d_or(a, b)
          if a == nil or b == nil then return nil end
          if a ~= 0 or b ~= 0 then return 1 end
          return 0
        end
        local function d_not(a) if a == nil then return nil end if a == 0 then return 1 end return 0 end
        local function d_abs(a) if a == nil then return nil end return m_abs(a) end
        local function d_log(a) if a == nil or a <= 0 then return nil end return d_fin(m_log(a)) end
        local function d_exp(a) if a == nil then return nil end return d_fin(m_exp(a)) end
        local function d_sqrt(a) if a == nil or a < 0 then return nil end return m_sqrt(a) end
        local function d_pow(a, b) if a == nil or b == nil then return nil end return d_fin(m_pow(a, b)) end
        local function d_min(a, b)
          if a == nil or b == nil then return nil end
          if b < a then return b end
          return a
        end
        local function d_max(a, b)
          if a == nil or b == nil then return nil end
          if b > a then return b end
          return a
        end
        local function d_coalesce(a, b) if a == nil then return b end return a end
        local function d_if(c, a, b)
          if c == nil then return nil end
          if c ~= 0 then return a end
          return b
        end
        local function d_text(v)
          if v == nil then return 'null' end
          return number(v)
        end
        """#

    /// The helpers and `local function derived(out, n) ... end` for the
    /// topology's derived columns, or `local derived = nil` when it has none.
    ///
    /// Inputs and results are Lua locals (a table when there are too many
    /// for Lua's 200 locals); an expression is one nested call expression
    /// when it nests at most `inlineDepth` levels, else stack code over a
    /// table `s` (Lua's parser limits nesting).
    static func function(_ t: Topology) -> String {
        guard !t.derived.isEmpty else { return "local derived = nil" }
        let featureColumns = t.features.flatMap(\.outputNames)
        let types = t.features.flatMap(\.outputTypes)
        let index = DerivedColumns.resolver(featureColumns: featureColumns, derived: t.derived)
        // Feature columns read by some expression, parsed once.
        var needed = Set<Int>()
        for d in t.derived {
            for c in d.expression.columns {
                if let i = index[c], i < featureColumns.count, types[i].isNumeric { needed.insert(i) }
            }
        }
        let locals = needed.count + t.derived.count <= 180
        func ref(_ i: Int) -> String {
            if !locals { return "v[\(i + 1)]" }
            return i < featureColumns.count ? "c\(i + 1)" : "d\(i - featureColumns.count + 1)"
        }
        let stacked = t.derived.contains { depth($0.expression) > inlineDepth }
        var lines = [helpers, "-- The topology's derived columns, after the feature columns (out[5 ...]).",
                     "local function derived(out, n)"]
        if !locals { lines.append("  local v = {}") }
        if stacked { lines.append("  local s = {}") }
        for i in needed.sorted() {
            let prefix = FunctionLibrary.columnPrefix(featureColumns[i])
            let text = "sub(out[\(5 + i)], \(prefix.count + 1))"
            let value = types[i] == .boolean ? "(\(text) == 'true') and 1 or 0" : "tonumber(\(text))"
            lines.append("  \(locals ? "local " : "")\(ref(i)) = \(value)  -- \(LuaLiteral.comment(featureColumns[i]))")
        }
        for (k, d) in t.derived.enumerated() {
            lines.append("  -- \(LuaLiteral.comment(d.name)) = \(LuaLiteral.comment(d.expression.description))")
            let resolve: (String) -> String = { name in
                // An unresolved name (the loader reports those) or a
                // non-numeric column reads null.
                guard let i = index[name], i < featureColumns.count + k, i >= featureColumns.count || needed.contains(i) else {
                    return "nil"
                }
                return ref(i)
            }
            let target = ref(featureColumns.count + k)
            let declare = locals ? "local " : ""
            if depth(d.expression) <= inlineDepth {
                lines.append("  \(declare)\(target) = \(inline(d.expression, resolve: resolve))")
            } else {
                emit(d.expression, slot: 1, resolve: resolve, into: &lines)
                lines.append("  \(declare)\(target) = s[1]")
            }
            let prefix = LuaLiteral.string(FunctionLibrary.columnPrefix(d.name))
            lines.append("  out[n + \(k + 1)] = \(prefix) .. d_text(\(target))")
        }
        lines.append("  return n + \(t.derived.count)")
        lines.append("end")
        return lines.joined(separator: "\n")
    }

    /// The deepest expression written as one nested Lua expression.
    static let inlineDepth = 12

    /// Nesting depth of an expression tree (a leaf is 1).
    static func depth(_ e: DerivedExpr) -> Int {
        switch e {
        case .number, .column: return 1
        case .unary(_, let a): return 1 + depth(a)
        case .binary(_, let a, let b): return 1 + max(depth(a), depth(b))
        case .call(let f, let args):
            // Variadic calls fold into nested pairs.
            let inner = args.map(depth).max() ?? 0
            let folds = (f == .min || f == .max || f == .coalesce || f == .pow) ? args.count - 1 : 1
            return folds + inner
        }
    }

    /// `e` as one Lua expression of nested helper calls (as `DerivedProgram`).
    static func inline(_ e: DerivedExpr, resolve: (String) -> String) -> String {
        switch e {
        case .number(let v): return number(v)
        case .column(let name): return resolve(name)
        case .unary(let op, let a): return "\(op == .negate ? "d_neg" : "d_not")(\(inline(a, resolve: resolve)))"
        case .binary(let op, let a, let b):
            return "\(helper(op))(\(inline(a, resolve: resolve)), \(inline(b, resolve: resolve)))"
        case .call(let f, let args):
            let parts = args.map { inline($0, resolve: resolve) }
            switch f {
            case .abs, .log, .exp, .sqrt: return "d_\(f.rawValue)(\(parts[0]))"
            case .pow, .min, .max, .coalesce:
                return parts.dropFirst().reduce(parts[0]) { "d_\(f.rawValue)(\($0), \($1))" }
            case .if: return "d_if(\(parts[0]), \(parts[1]), \(parts[2]))"
            }
        }
    }

    /// Stack code leaving `e`'s value in `s[slot]` (as `DerivedProgram`).
    static func emit(_ e: DerivedExpr, slot k: Int, resolve: (String) -> String, into lines: inout [String]) {
        switch e {
        case .number(let v):
            lines.append("  s[\(k)] = \(number(v))")
        case .column(let name):
            lines.append("  s[\(k)] = \(resolve(name))")
        case .unary(let op, let a):
            emit(a, slot: k, resolve: resolve, into: &lines)
            lines.append("  s[\(k)] = \(op == .negate ? "d_neg" : "d_not")(s[\(k)])")
        case .binary(let op, let a, let b):
            emit(a, slot: k, resolve: resolve, into: &lines)
            emit(b, slot: k + 1, resolve: resolve, into: &lines)
            lines.append("  s[\(k)] = \(helper(op))(s[\(k)], s[\(k + 1)])")
        case .call(let f, let args):
            switch f {
            case .abs, .log, .exp, .sqrt:
                emit(args[0], slot: k, resolve: resolve, into: &lines)
                lines.append("  s[\(k)] = d_\(f.rawValue)(s[\(k)])")
            case .pow, .min, .max, .coalesce:
                emit(args[0], slot: k, resolve: resolve, into: &lines)
                for a in args.dropFirst() {
                    emit(a, slot: k + 1, resolve: resolve, into: &lines)
                    lines.append("  s[\(k)] = d_\(f.rawValue)(s[\(k)], s[\(k + 1)])")
                }
            case .if:
                for (i, a) in args.enumerated() { emit(a, slot: k + i, resolve: resolve, into: &lines) }
                lines.append("  s[\(k)] = d_if(s[\(k)], s[\(k + 1)], s[\(k + 2)])")
            }
        }
    }

    static func helper(_ op: DerivedBinary) -> String {
        switch op {
        case .add: return "d_add"
        case .subtract: return "d_sub"
        case .multiply: return "d_mul"
        case .divide: return "d_div"
        case .less: return "d_lt"
        case .lessOrEqual: return "d_le"
        case .greater: return "d_gt"
        case .greaterOrEqual: return "d_ge"
        case .equal: return "d_eq"
        case .notEqual: return "d_ne"
        case .and: return "d_and"
        case .or: return "d_or"
        }
    }

    /// A Lua number literal for a finite double, exactly: the shortest
    /// round-trip digits (Lua reads them with `strtod`), negatives in
    /// parentheses; a non-finite constant is null.
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return "nil" }
        let text = v.magnitude.description
        return v.sign == .minus ? "(-\(text))" : text
    }
}

extension LuaLiteral {
    /// Text safe inside a Lua `--` comment: one line, printable ASCII.
    static func comment(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? $0 : "?" }))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// The value rules of derived expressions (SEMANTICS.md, Derived features),
/// on doubles where NaN stands for null: no valid value is NaN, because
/// every non-finite result is null.
///
/// The generated Lua (`EddyStore.DerivedLua`) implements the same rules
/// with `nil` for null, operation for operation; change both together.
public enum DerivedMath {
    public static let null = Double.nan

    /// `v`, or null when it is not finite.
    @inline(__always) public static func finite(_ v: Double) -> Double { v.isFinite ? v : .nan }

    @inline(__always) public static func add(_ a: Double, _ b: Double) -> Double { finite(a + b) }
    @inline(__always) public static func subtract(_ a: Double, _ b: Double) -> Double { finite(a - b) }
    @inline(__always) public static func multiply(_ a: Double, _ b: Double) -> Double { finite(a * b) }
    /// Null when either is null or `b` is zero.
    @inline(__always) public static func divide(_ a: Double, _ b: Double) -> Double {
        (a.isNaN || b.isNaN || b == 0) ? .nan : finite(a / b)
    }
    @inline(__always) public static func negate(_ a: Double) -> Double { -a }

    @inline(__always) static func truth(_ c: Bool) -> Double { c ? 1 : 0 }
    /// Comparisons: 1 or 0, null when either is null.
    @inline(__always) public static func compare(_ op: DerivedBinary, _ a: Double, _ b: Double) -> Double {
        if a.isNaN || b.isNaN { return .nan }
        switch op {
        case .less: return truth(a < b)
        case .lessOrEqual: return truth(a <= b)
        case .greater: return truth(a > b)
        case .greaterOrEqual: return truth(a >= b)
        case .equal: return truth(a == b)
        default: return truth(a != b)
        }
    }
    /// 1 when both are non-zero, else 0; null when either is null.
    @inline(__always) public static func and(_ a: Double, _ b: Double) -> Double {
        (a.isNaN || b.isNaN) ? .nan : truth(a != 0 && b != 0)
    }
    @inline(__always) public static func or(_ a: Double, _ b: Double) -> Double {
        (a.isNaN || b.isNaN) ? .nan : truth(a != 0 || b != 0)
    }
    @inline(__always) public static func not(_ a: Double) -> Double { a.isNaN ? .nan : truth(a == 0) }

    @inline(__always) public static func abs(_ a: Double) -> Double { a.magnitude }
    /// Natural log; null for `a <= 0`.
    @inline(__always) public static func log(_ a: Double) -> Double { (a.isNaN || a <= 0) ? .nan : finite(libcLog(a)) }
    @inline(__always) public static func exp(_ a: Double) -> Double { a.isNaN ? .nan : finite(libcExp(a)) }
    /// Null for `a < 0`.
    @inline(__always) public static func sqrt(_ a: Double) -> Double { (a.isNaN || a < 0) ? .nan : a.squareRoot() }
    /// C's `pow`; null when either is null (C's `pow(x, 0)` is 1 even for NaN).
    @inline(__always) public static func pow(_ a: Double, _ b: Double) -> Double {
        (a.isNaN || b.isNaN) ? .nan : finite(libcPow(a, b))
    }
    /// The lesser; null when either is null. `min(a, b, c)` is `min(min(a, b), c)`.
    @inline(__always) public static func min(_ a: Double, _ b: Double) -> Double {
        (a.isNaN || b.isNaN) ? .nan : (b < a ? b : a)
    }
    @inline(__always) public static func max(_ a: Double, _ b: Double) -> Double {
        (a.isNaN || b.isNaN) ? .nan : (b > a ? b : a)
    }
    /// `a` unless null, else `b`. `coalesce(a, b, c)` is `coalesce(coalesce(a, b), c)`.
    @inline(__always) public static func coalesce(_ a: Double, _ b: Double) -> Double { a.isNaN ? b : a }
    /// `a` when `c` is non-zero, `b` when it is zero, null when it is null.
    @inline(__always) public static func choose(_ c: Double, _ a: Double, _ b: Double) -> Double {
        c.isNaN ? .nan : (c != 0 ? a : b)
    }
}

// The C library's functions, by name, so the calls are the ones the Lua
// side makes (Redis' `math.log`, `math.exp`, `math.pow` call them too).
@inline(__always) func libcLog(_ v: Double) -> Double { log(v) }
@inline(__always) func libcExp(_ v: Double) -> Double { exp(v) }
@inline(__always) func libcPow(_ a: Double, _ b: Double) -> Double { pow(a, b) }

/// A derived expression compiled to postfix code over numbered inputs.
/// Evaluation allocates nothing: the caller passes the inputs and a stack
/// of `stackSize` doubles. Null is NaN, in inputs and in the result.
public struct DerivedProgram: Sendable, Equatable {
    enum Op: UInt8, Sendable {
        case constant, input
        case negate, not, abs, log, exp, sqrt
        case add, subtract, multiply, divide, less, lessOrEqual, greater, greaterOrEqual, equal, notEqual
        case and, or, pow, min, max, coalesce
        case choose
    }

    struct Instruction: Sendable, Equatable {
        var op: Op
        var input: Int32 = 0
        var constant: Double = 0

        static func == (a: Instruction, b: Instruction) -> Bool {
            a.op == b.op && a.input == b.input && a.constant.bitPattern == b.constant.bitPattern
        }
    }

    let code: [Instruction]
    /// The stack depth evaluation needs.
    public let stackSize: Int
    /// The input indices the program reads, ascending, without repeats.
    public let inputs: [Int]

    /// Compiles `expression`; `resolve` gives a column's input index. Every
    /// column must resolve (the loader has checked them).
    public init(_ expression: DerivedExpr, resolve: (String) -> Int?) {
        var code: [Instruction] = []
        var depth = 0
        var maxDepth = 0
        var inputs = Set<Int>()
        func push(_ i: Instruction, _ change: Int) {
            code.append(i)
            depth += change
            maxDepth = Swift.max(maxDepth, depth)
        }
        func emit(_ e: DerivedExpr) {
            switch e {
            case .number(let v): push(Instruction(op: .constant, constant: v), 1)
            case .column(let name):
                guard let i = resolve(name) else { preconditionFailure("derived column reads unknown column \(name)") }
                inputs.insert(i)
                push(Instruction(op: .input, input: Int32(i)), 1)
            case .unary(let op, let a):
                emit(a)
                push(Instruction(op: op == .negate ? .negate : .not), 0)
            case .binary(let op, let a, let b):
                emit(a)
                emit(b)
                push(Instruction(op: Self.op(op)), -1)
            case .call(let f, let args):
                switch f {
                case .abs, .log, .exp, .sqrt:
                    emit(args[0])
                    push(Instruction(op: f == .abs ? .abs : f == .log ? .log : f == .exp ? .exp : .sqrt), 0)
                case .pow, .min, .max, .coalesce:
                    // Variadic calls fold left: min(a, b, c) = min(min(a, b), c).
                    let op: Op = f == .pow ? .pow : f == .min ? .min : f == .max ? .max : .coalesce
                    emit(args[0])
                    for a in args.dropFirst() {
                        emit(a)
                        push(Instruction(op: op), -1)
                    }
                case .if:
                    for a in args { emit(a) }
                    push(Instruction(op: .choose), -2)
                }
            }
        }
        emit(expression)
        self.code = code
        self.stackSize = Swift.max(maxDepth, 1)
        self.inputs = inputs.sorted()
    }

    static func op(_ b: DerivedBinary) -> Op {
        switch b {
        case .add: return .add
        case .subtract: return .subtract
        case .multiply: return .multiply
        case .divide: return .divide
        case .less: return .less
        case .lessOrEqual: return .lessOrEqual
        case .greater: return .greater
        case .greaterOrEqual: return .greaterOrEqual
        case .equal: return .equal
        case .notEqual: return .notEqual
        case .and: return .and
        case .or: return .or
        }
    }

    /// The value, or NaN for null. `inputs` holds every input index the
    /// program reads (null as NaN; other non-finite values are read as
    /// null); `stack` has room for `stackSize` doubles.
    @inline(__always)
    public func evaluate(inputs: UnsafePointer<Double>, stack: UnsafeMutablePointer<Double>) -> Double {
        typealias M = DerivedMath
        var sp = 0
        code.withUnsafeBufferPointer { code in
            for ins in code {
                switch ins.op {
                case .constant:
                    stack[sp] = ins.constant
                    sp += 1
                case .input:
                    stack[sp] = M.finite(inputs[Int(ins.input)])
                    sp += 1
                case .negate: stack[sp - 1] = M.negate(stack[sp - 1])
                case .not: stack[sp - 1] = M.not(stack[sp - 1])
                case .abs: stack[sp - 1] = M.abs(stack[sp - 1])
                case .log: stack[sp - 1] = M.log(stack[sp - 1])
                case .exp: stack[sp - 1] = M.exp(stack[sp - 1])
                case .sqrt: stack[sp - 1] = M.sqrt(stack[sp - 1])
                case .choose:
                    sp -= 2
                    stack[sp - 1] = M.choose(stack[sp - 1], stack[sp], stack[sp + 1])
                default:
                    sp -= 1
                    let a = stack[sp - 1], b = stack[sp]
                    let r: Double
                    switch ins.op {
                    case .add: r = M.add(a, b)
                    case .subtract: r = M.subtract(a, b)
                    case .multiply: r = M.multiply(a, b)
                    case .divide: r = M.divide(a, b)
                    case .less: r = M.compare(.less, a, b)
                    case .lessOrEqual: r = M.compare(.lessOrEqual, a, b)
                    case .greater: r = M.compare(.greater, a, b)
                    case .greaterOrEqual: r = M.compare(.greaterOrEqual, a, b)
                    case .equal: r = M.compare(.equal, a, b)
                    case .notEqual: r = M.compare(.notEqual, a, b)
                    case .and: r = M.and(a, b)
                    case .or: r = M.or(a, b)
                    case .pow: r = M.pow(a, b)
                    case .min: r = M.min(a, b)
                    case .max: r = M.max(a, b)
                    default: r = M.coalesce(a, b)
                    }
                    stack[sp - 1] = r
                }
            }
        }
        return stack[0]
    }

    /// Convenience for tests and tools (allocates): inputs by index, nil for null.
    public func evaluate(_ inputs: [Double?]) -> Double? {
        var values = inputs.map { $0 ?? .nan }
        if values.isEmpty { values = [.nan] }
        let stack = UnsafeMutablePointer<Double>.allocate(capacity: stackSize)
        defer { stack.deallocate() }
        let r = values.withUnsafeBufferPointer { evaluate(inputs: $0.baseAddress!, stack: stack) }
        return r.isNaN ? nil : r
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress of a long replay on standard error: on a terminal a bar redrawn
/// in place with events/s, the share of the range done and the time left;
/// otherwise (a log, a pipe) one line every few seconds.
///
/// `update` only reads the clock; call it every few thousand events.
public final class ProgressMeter {
    public let label: String
    /// The size of the range (bytes of the input files, or Kafka offsets);
    /// nil when unknown (standard input).
    public var total: Int64?
    /// What `total` counts, for the log line: "bytes" or "offsets".
    public let unit: String
    let tty: Bool
    let interval: Double
    let started: Double
    var lastDraw: Double
    var drawn = false
    public var enabled = true

    public init(label: String, total: Int64?, unit: String, terminal: Bool = isatty(2) != 0, lineInterval: Double = 5) {
        self.label = label
        self.total = total
        self.unit = unit
        self.tty = terminal
        self.interval = terminal ? 0.25 : lineInterval
        self.started = Self.now()
        self.lastDraw = started
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Reports `done` units of the range and `events` events so far; draws
    /// when the interval has passed.
    public func update(done: Int64, events: Int) {
        guard enabled else { return }
        let t = Self.now()
        guard t - lastDraw >= interval else { return }
        lastDraw = t
        draw(done: done, events: events, at: t)
    }

    /// Clears the bar (terminal); call before printing the summary.
    public func finish() {
        guard enabled, tty, drawn else { return }
        write(2, "\r\u{1B}[K", 4)
        drawn = false
    }

    func draw(done: Int64, events: Int, at t: Double) {
        let elapsed = max(t - started, 1e-9)
        let rate = Double(events) / elapsed
        var fraction: Double?
        if let total, total > 0 { fraction = min(max(Double(done) / Double(total), 0), 1) }
        var eta = "--"
        if let fraction, fraction > 0 { eta = Self.duration(elapsed * (1 - fraction) / fraction) }
        let text: String
        if tty {
            var bar = ""
            if let fraction {
                let width = 24
                let filled = Int(fraction * Double(width))
                bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
                bar += Self.percent(fraction) + "  "
            }
            text = "\r\(label) \(bar)\(Self.count(Double(events))) events  \(Self.count(rate)) events/s  ETA \(eta)\u{1B}[K"
            drawn = true
        } else {
            var of = ""
            if let fraction, let total {
                of = "\(Self.percent(fraction)) (\(Self.count(Double(done))) of \(Self.count(Double(total))) \(unit)), "
            }
            text = "\(label): \(of)\(events) events, \(Self.count(rate)) events/s, \(Self.duration(elapsed)) elapsed, ETA \(eta)\n"
        }
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress!, $0.count) }
    }

    static func percent(_ f: Double) -> String {
        let tenths = Int((f * 1000).rounded(.down))
        return "\(tenths / 10).\(tenths % 10)%"
    }

    /// 1234 -> "1.2K", 1534000 -> "1.53M".
    static func count(_ v: Double) -> String {
        func fixed(_ x: Double, _ digits: Int) -> String {
            let scale = digits == 2 ? 100.0 : 10.0
            let n = Int((x * scale).rounded())
            let whole = n / Int(scale), frac = n % Int(scale)
            let f = String(frac)
            return "\(whole)." + String(repeating: "0", count: digits - f.count) + f
        }
        if v >= 1e9 { return fixed(v / 1e9, 2) + "G" }
        if v >= 1e6 { return fixed(v / 1e6, 2) + "M" }
        if v >= 1e4 { return fixed(v / 1e3, 1) + "K" }
        return String(Int(v))
    }

    /// Seconds as "42s", "3m05s", "1h02m".
    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "--" }
        let n = Int(s.rounded())
        if n < 60 { return "\(n)s" }
        if n < 3600 { return "\(n / 60)m" + (n % 60 < 10 ? "0" : "") + "\(n % 60)s" }
        return "\(n / 3600)h" + ((n % 3600) / 60 < 10 ? "0" : "") + "\((n % 3600) / 60)m"
    }
}

import Foundation

/// Inline SVG charts: line charts of time series, histograms (with a baseline beside), a
/// session timeline. Pure functions of their data; every label is HTML-escaped.
public enum SVG {
    /// One line of a chart: its name and (x, y) points in x order.
    public struct Series: Sendable, Equatable {
        public var name: String
        public var points: [Point]
        public init(name: String, points: [Point]) {
            self.name = name
            self.points = points
        }
    }

    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public init(_ x: Double, _ y: Double) {
            self.x = x
            self.y = y
        }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                          "#7f7f7f", "#bcbd22"]

    /// A number as short text (`1.5k`, `0.25`, `12`).
    public static func short(_ v: Double) -> String {
        if !v.isFinite { return "–" }
        let a = abs(v)
        if a >= 1e9 { return trim(v / 1e9) + "G" }
        if a >= 1e6 { return trim(v / 1e6) + "M" }
        if a >= 1e4 { return trim(v / 1e3) + "k" }
        if a == 0 { return "0" }
        if a < 0.01 { return String(format: "%.1e", v) }
        if a >= 100 { return String(format: "%.0f", v) }
        if a >= 10 { return trim(Double(String(format: "%.1f", v))!) }
        return trim(v)
    }

    static func trim(_ v: Double) -> String {
        var s = String(format: "%.3f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A line chart: one polyline per series (`class="series"`, `data-name`, `data-points` =
    /// its point count), axes with min/max labels, an optional vertical marker at `markerX`,
    /// and a legend. `xLabel` formats x values for the axis.
    public static func lineChart(_ series: [Series], title: String, width: Double = 500, height: Double = 170,
                                 markerX: Double? = nil, xLabel: (Double) -> String = { short($0) },
                                 yUnit: String = "") -> String {
        let all = series.flatMap(\.points)
        let left = 52.0, right = 12.0, top = 18.0, bottom = 22.0
        let plotW = width - left - right, plotH = height - top - bottom
        var out = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height + 16 * Double((series.count + 2) / 3)))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
        out += "<text x=\"\(f(left))\" y=\"12\" style=\"font-size:12px;font-weight:600;fill:#1d232a\">\(HTML.escape(title))</text>"
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"#fff\" stroke=\"#d8dde3\"/>"
        guard !all.isEmpty else {
            out += "<text class=\"empty\" x=\"\(f(left + 10))\" y=\"\(f(top + plotH / 2))\">no data yet</text></svg>"
            return out
        }
        var minX = all.map(\.x).min()!, maxX = all.map(\.x).max()!
        if let markerX { minX = min(minX, markerX); maxX = max(maxX, markerX) }
        var minY = min(0, all.map(\.y).min()!), maxY = all.map(\.y).max()!
        if maxX == minX { maxX = minX + 1 }
        if maxY == minY { maxY = minY + 1 }
        func px(_ x: Double) -> Double { left + (x - minX) / (maxX - minX) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y - minY) / (maxY - minY) * plotH }
        // Axis labels.
        out += "<text x=\"\(f(left - 4))\" y=\"\(f(top + 8))\" text-anchor=\"end\">\(HTML.escape(short(maxY) + yUnit))</text>"
        out += "<text x=\"\(f(left - 4))\" y=\"\(f(top + plotH))\" text-anchor=\"end\">\(HTML.escape(short(minY) + yUnit))</text>"
        out += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"\(f(py((minY + maxY) / 2)))\" y2=\"\(f(py((minY + maxY) / 2)))\" stroke=\"#eef1f5\"/>"
        out += "<text x=\"\(f(left))\" y=\"\(f(top + plotH + 14))\">\(HTML.escape(xLabel(minX)))</text>"
        out += "<text x=\"\(f(left + plotW))\" y=\"\(f(top + plotH + 14))\" text-anchor=\"end\">\(HTML.escape(xLabel(maxX)))</text>"
        if let markerX {
            out += "<line class=\"marker\" x1=\"\(f(px(markerX)))\" x2=\"\(f(px(markerX)))\" y1=\"\(f(top))\" y2=\"\(f(top + plotH))\" stroke=\"#fca311\" stroke-dasharray=\"4 3\"/>"
            out += "<text x=\"\(f(px(markerX) + 3))\" y=\"\(f(top + 10))\" style=\"fill:#b36b00\">T</text>"
        }
        for (i, s) in series.enumerated() {
            let color = palette[i % palette.count]
            let pts = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            out += "<polyline class=\"series\" data-name=\"\(HTML.escape(s.name))\" data-points=\"\(s.points.count)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(pts)\"/>"
            if s.points.count == 1, let p = s.points.first {
                out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\" fill=\"\(color)\"/>"
            }
            let lx = left + Double(i % 3) * (plotW / 3), ly = height + 12 + 16 * Double(i / 3)
            let last = s.points.last.map { " " + short($0.y) + yUnit } ?? ""
            out += "<rect x=\"\(f(lx))\" y=\"\(f(ly - 8))\" width=\"10\" height=\"3\" fill=\"\(color)\"/>"
            out += "<text x=\"\(f(lx + 14))\" y=\"\(f(ly - 4))\">\(HTML.escape(s.name + last))</text>"
        }
        return out + "</svg>"
    }

    /// A histogram: one bar per bin (`class="bar cur"`), and when `baseline` is given one
    /// baseline bar beside each (`class="bar base"`), both as shares of their totals so
    /// samples of different sizes compare. `labels` name the bins (same count as `current`).
    public static func histogram(current: [Int], baseline: [Int]?, labels: [String], title: String,
                                 width: Double = 500, height: Double = 180) -> String {
        let left = 40.0, right = 8.0, top = 18.0, bottom = 40.0
        let plotW = width - left - right, plotH = height - top - bottom
        let curTotal = max(current.reduce(0, +), 1)
        let baseTotal = max(baseline?.reduce(0, +) ?? 0, 1)
        let curShares = current.map { Double($0) / Double(curTotal) }
        let baseShares = baseline?.map { Double($0) / Double(baseTotal) }
        let maxShare = max((curShares + (baseShares ?? [])).max() ?? 0, 1e-9)
        var out = "<svg class=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\" data-bars=\"\(current.count)\">"
        out += "<text x=\"\(f(left))\" y=\"12\" style=\"font-size:12px;font-weight:600;fill:#1d232a\">\(HTML.escape(title))</text>"
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"#fff\" stroke=\"#d8dde3\"/>"
        out += "<text x=\"\(f(left - 4))\" y=\"\(f(top + 8))\" text-anchor=\"end\">\(HTML.escape(short(maxShare * 100)))%</text>"
        out += "<text x=\"\(f(left - 4))\" y=\"\(f(top + plotH))\" text-anchor=\"end\">0</text>"
        let n = max(current.count, 1)
        let slot = plotW / Double(n)
        let barW = baseline == nil ? slot * 0.8 : slot * 0.4
        let labelEvery = max(1, Int((Double(n) * 34 / plotW).rounded(.up)))
        for i in 0..<current.count {
            let x0 = left + Double(i) * slot + slot * 0.1
            let h = curShares[i] / maxShare * plotH
            out += "<rect class=\"bar cur\" data-bin=\"\(HTML.escape(labels[i]))\" data-count=\"\(current[i])\" x=\"\(f(x0))\" y=\"\(f(top + plotH - h))\" width=\"\(f(barW))\" height=\"\(f(h))\" fill=\"#1f77b4\"><title>\(HTML.escape(labels[i])): \(current[i])</title></rect>"
            if let baseShares, let baseline {
                let bh = baseShares[i] / maxShare * plotH
                out += "<rect class=\"bar base\" data-bin=\"\(HTML.escape(labels[i]))\" data-count=\"\(baseline[i])\" x=\"\(f(x0 + barW))\" y=\"\(f(top + plotH - bh))\" width=\"\(f(barW))\" height=\"\(f(bh))\" fill=\"#b8c2cc\"><title>baseline \(HTML.escape(labels[i])): \(baseline[i])</title></rect>"
            }
            if i % labelEvery == 0 {
                out += "<text x=\"\(f(x0 + barW / 2))\" y=\"\(f(top + plotH + 12))\" text-anchor=\"middle\">\(HTML.escape(labels[i]))</text>"
            }
        }
        if baseline != nil {
            out += "<rect x=\"\(f(left))\" y=\"\(f(height - 12))\" width=\"10\" height=\"8\" fill=\"#1f77b4\"/><text x=\"\(f(left + 14))\" y=\"\(f(height - 4))\">current</text>"
            out += "<rect x=\"\(f(left + 80))\" y=\"\(f(height - 12))\" width=\"10\" height=\"8\" fill=\"#b8c2cc\"/><text x=\"\(f(left + 94))\" y=\"\(f(height - 4))\">baseline</text>"
        }
        return out + "</svg>"
    }

    /// A session on a time axis from `from` to `to` (epoch ms): a bar from its start to its
    /// last event, the gap after it (while it may still grow), and a marker at the read time.
    public static func sessionTimeline(start: Double, last: Double, gapMs: Double, readAt: Double, events: Int,
                                       active: Bool, width: Double = 500) -> String {
        let left = 10.0, right = 10.0, plotW = width - left - right
        let from = min(start, readAt) - max((last - start) * 0.1, gapMs * 0.1, 1000)
        let to = max(last + gapMs, readAt) + max(gapMs * 0.1, 1000)
        func px(_ t: Double) -> Double { left + (t - from) / (to - from) * plotW }
        var out = "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"70\" role=\"img\" aria-label=\"session timeline\">"
        out += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"40\" y2=\"40\" stroke=\"#d8dde3\"/>"
        out += "<rect class=\"session\" x=\"\(f(px(start)))\" y=\"30\" width=\"\(f(max(px(last) - px(start), 2)))\" height=\"20\" fill=\"\(active ? "#2ca02c" : "#7f7f7f")\"><title>\(events) events</title></rect>"
        out += "<rect class=\"gap\" x=\"\(f(px(last)))\" y=\"36\" width=\"\(f(max(px(last + gapMs) - px(last), 1)))\" height=\"8\" fill=\"#eef1f5\" stroke=\"#c8d0d8\"/>"
        out += "<line x1=\"\(f(px(readAt)))\" x2=\"\(f(px(readAt)))\" y1=\"22\" y2=\"58\" stroke=\"#fca311\" stroke-dasharray=\"4 3\"/>"
        out += "<text x=\"\(f(px(start)))\" y=\"20\">\(HTML.escape(Format.time(start)))</text>"
        out += "<text x=\"\(f(px(last)))\" y=\"66\">\(HTML.escape(Format.time(last)))</text>"
        out += "<text x=\"\(f(px(readAt) + 3))\" y=\"30\" style=\"fill:#b36b00\">T</text>"
        return out + "</svg>"
    }
}

/// Formatting shared by the views.
public enum Format {
    /// Epoch ms as `2026-01-01T00:00:00.000Z`.
    public static func time(_ ms: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: ms / 1000))
    }

    /// A duration in ms as `1h`, `5m`, `30s`, `250ms`, `1h30m`.
    public static func duration(_ ms: Int64) -> String {
        if ms == 0 { return "0" }
        if ms % 1000 != 0 { return "\(ms)ms" }
        var s = ms / 1000
        var out = ""
        // Days only from a week on (a 24h window reads as written: 24h).
        let units: [(String, Int64)] = s >= 7 * 86_400 ? [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] : [("h", 3600), ("m", 60), ("s", 1)]
        for (unit, size) in units where s >= size {
            out += "\(s / size)\(unit)"
            s %= size
        }
        return out
    }

    /// Bytes as `812 B`, `3.1 KiB`.
    public static func bytes(_ n: Int) -> String {
        n < 1024 ? "\(n) B" : n < 1 << 20 ? String(format: "%.1f KiB", Double(n) / 1024) : String(format: "%.1f MiB", Double(n) / 1_048_576)
    }
}

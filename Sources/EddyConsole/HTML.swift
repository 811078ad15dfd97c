import Foundation

/// HTML text helpers: escaping for element text and attribute values, percent-escaping for
/// URL parts, and the page frame every console view shares (its style sheet is embedded:
/// no CDN, no download at run time).
public enum HTML {
    /// `s` with `& < > " '` escaped: safe in element text and in quoted attribute values.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Percent-escapes everything but RFC 3986's unreserved characters: safe as one path
    /// segment or one query value (a key with `/`, `?`, `&`, `#` or `<` stays one value).
    public static func percentEscape(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// A query string from (name, value) pairs, every value percent-escaped.
    public static func query(_ items: [(String, String)]) -> String {
        items.map { "\(percentEscape($0.0))=\(percentEscape($0.1))" }.joined(separator: "&")
    }

    /// Decodes `application/x-www-form-urlencoded` text (a form body or a query).
    public static func formDecode(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let spaced = s.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            let name = decode(parts[0])
            out[name] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return out
    }

    /// The console's views, in navigation order: (path, label).
    public static let views: [(path: String, label: String)] = [
        ("/ui/topologies", "Topologies"), ("/ui/entity", "Entity inspector"),
        ("/ui/distributions", "Distributions"), ("/ui/workers", "Workers"),
    ]

    /// A whole page: title, navigation (the active view marked), the body.
    public static func page(title: String, active: String, body: String) -> String {
        var nav = ""
        for v in views {
            nav += "<a href=\"\(v.path)\"\(v.path == active ? " class=\"active\"" : "")>\(escape(v.label))</a>"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Eddy console</title>
            <style>\(styleSheet)</style></head>
            <body><header><span class="brand">Eddy</span><nav>\(nav)</nav></header>
            <main><h1>\(escape(title))</h1>
            \(body)
            </main></body></html>
            """
    }

    /// The embedded style sheet.
    public static let styleSheet = """
        body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
        header{background:#14213d;color:#fff;padding:8px 16px;display:flex;gap:24px;align-items:center}
        header .brand{font-weight:700;font-size:18px}
        nav a{color:#cfd8e3;text-decoration:none;margin-right:16px}nav a.active{color:#fff;border-bottom:2px solid #fca311}
        main{padding:16px 24px;max-width:1200px}
        h1{font-size:22px;margin:8px 0 16px}h2{font-size:18px;margin:20px 0 8px}h3{font-size:15px;margin:14px 0 6px}
        table{border-collapse:collapse;background:#fff;margin:4px 0 12px}
        th,td{border:1px solid #d8dde3;padding:4px 8px;text-align:left;font-size:13px;vertical-align:top}
        th{background:#eef1f5}
        code,.mono{font-family:"DejaVu Sans Mono",monospace;font-size:12px}
        .card{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:10px 14px;margin:10px 0}
        .flag{color:#b00020;font-weight:700}.ok{color:#1b7f3b}.muted{color:#6b7785}
        .error{background:#fde8e8;border:1px solid #e0a0a0;padding:8px;border-radius:4px}
        .grid{display:flex;flex-wrap:wrap;gap:12px}.grid .card{flex:1 1 480px;min-width:0}
        svg text{font-size:10px;fill:#4a5561}
        form.inline input[type=text]{width:260px}input,select,button{font-size:14px;padding:3px 6px}
        """
}

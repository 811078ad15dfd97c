/// Text helpers for generating Lua source.
enum LuaLiteral {
    /// A single-quoted Lua string literal holding exactly `bytes`: printable
    /// ASCII is copied (`'` and `\` escaped), every other byte is a
    /// three-digit decimal escape, so the source stays ASCII.
    static func string<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = "'"
        for b in bytes {
            switch b {
            case UInt8(ascii: "'"): out += "\\'"
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let digits = String(b)
                out += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
            }
        }
        return out + "'"
    }

    /// A single-quoted Lua string literal holding the UTF-8 of `text`.
    static func string(_ text: String) -> String { string(Array(text.utf8)) }

    /// `text` with every character outside `[A-Za-z0-9_]` replaced by `_`:
    /// the characters Redis allows in library and function names.
    static func identifier(_ text: String) -> String {
        var out = ""
        for u in text.unicodeScalars {
            let ok = (u >= "a" && u <= "z") || (u >= "A" && u <= "Z") || (u >= "0" && u <= "9") || u == "_"
            out.unicodeScalars.append(ok ? u : "_")
        }
        return out.isEmpty ? "_" : out
    }
}

/// Redis's glob patterns (`SCAN MATCH`, `KEYS`).
public enum GlobPattern {
    /// `text` matched literally: every character that is special in a
    /// pattern (`* ? [ ] \ ^`) escaped with a backslash.
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            if "*?[]\\^".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }

    /// Every key that starts with `prefix`.
    public static func keys(withPrefix prefix: String) -> String { escaped(prefix) + "*" }
}

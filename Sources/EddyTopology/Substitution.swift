/// Expands `${VAR}` and `${VAR:-default}` from the environment. `$$` is a
/// literal dollar. Returns the text or the name of an unset variable
/// (with the column offset where it starts).
func substituteVariables(_ text: String, environment: [String: String]) -> Result<String, SubstitutionError> {
    guard text.contains("$") else { return .success(text) }
    var out = ""
    var chars = Array(text)
    var i = 0
    while i < chars.count {
        if chars[i] == "$", i + 1 < chars.count, chars[i + 1] == "$" {
            out.append("$"); i += 2; continue
        }
        if chars[i] == "$", i + 1 < chars.count, chars[i + 1] == "{" {
            guard let close = chars[(i + 2)...].firstIndex(of: "}") else {
                return .failure(.unterminated(offset: i))
            }
            let body = String(chars[(i + 2)..<close])
            let name: String
            var fallback: String?
            if let r = body.range(of: ":-") {
                name = String(body[..<r.lowerBound])
                fallback = String(body[r.upperBound...])
            } else {
                name = body
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                return .failure(.badName(name, offset: i))
            }
            if let v = environment[name], !(v.isEmpty && fallback != nil) {
                out += v
            } else if let fallback {
                out += fallback
            } else {
                return .failure(.unset(name, offset: i))
            }
            i = close + 1
            continue
        }
        out.append(chars[i]); i += 1
    }
    chars = []
    return .success(out)
}

enum SubstitutionError: Error {
    case unset(String, offset: Int)
    case badName(String, offset: Int)
    case unterminated(offset: Int)
}

/// What Eddy never prints: passwords in connection URLs and secret client
/// properties. Every place that shows a configured URL or property to a
/// person (`eddy check`'s plan, start-up logs, error messages) goes through
/// these, so a secret given in a file, an environment variable or a flag
/// stays out of logs, terminals and CI output.
public enum Secrets {
    /// The text shown instead of a secret.
    public static let mask = "***"

    /// `scheme://user:password@host…` with the password replaced by ``mask``
    /// (also `user:password@host` without a scheme). Text without
    /// credentials is returned unchanged. Works on unparsable text too, so
    /// an error about a malformed URL can still quote it.
    public static func redactingURLPassword(_ url: String) -> String {
        let chars = Array(url)
        var start = 0
        if let i = (0..<max(chars.count - 2, 0)).first(where: { chars[$0] == ":" && chars[$0 + 1] == "/" && chars[$0 + 2] == "/" }) {
            start = i + 3
        }
        // The authority ends at the first '/', '?' or '#'; a password may hold
        // '@', so the user info ends at the authority's last '@'.
        var end = start
        while end < chars.count, chars[end] != "/", chars[end] != "?", chars[end] != "#" { end += 1 }
        guard let at = (start..<end).last(where: { chars[$0] == "@" }) else { return url }
        let prefix = String(chars[..<start])
        let rest = String(chars[at...])
        guard let colon = (start..<at).first(where: { chars[$0] == ":" }) else {
            // `password@host` (no user): the whole user info is the secret.
            return prefix + mask + rest
        }
        return prefix + String(chars[start..<colon]) + ":" + mask + rest
    }

    /// Whether a Kafka client property (librdkafka's name) holds a secret:
    /// passwords, SASL secrets and JAAS text, OAuth client secrets, and
    /// private keys given inline. Matching is on the name, so any future
    /// `*.password` or `*.secret` property is covered too.
    public static func isSecretProperty(_ name: String) -> Bool {
        let n = name.lowercased()
        return n.contains("password") || n.contains("secret") || n.contains("jaas")
            || n == "ssl.key.pem" || n == "ssl_key" || n.hasSuffix(".token") || n.contains("credentials")
    }

    /// `value`, or ``mask`` when `name` is a secret property.
    public static func displayedValue(ofProperty name: String, _ value: String) -> String {
        isSecretProperty(name) ? mask : value
    }
}

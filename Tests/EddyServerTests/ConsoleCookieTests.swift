import EddyServer
import Foundation
import Testing

@Suite("Console cookie beside bearer tokens")
struct ConsoleCookieTests {
    static func tokens(_ text: String) throws -> BearerTokens {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString.prefix(8))").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try BearerTokens(path: path)
    }

    @Test("the console cookie carries a token, percent-escaped, among other cookies; anything else is refused")
    func cookie() throws {
        let t = try Self.tokens("tok-A\nx;y=z\n")
        #expect(t.allows(cookieHeader: "eddy_console=tok-A"))
        #expect(t.allows(cookieHeader: "a=1; eddy_console=tok-A; b=2"))
        #expect(t.allows(cookieHeader: "eddy_console=x%3By%3Dz"))
        #expect(!t.allows(cookieHeader: nil))
        #expect(!t.allows(cookieHeader: ""))
        #expect(!t.allows(cookieHeader: "eddy_console="))
        #expect(!t.allows(cookieHeader: "eddy_console=tok-"))
        #expect(!t.allows(cookieHeader: "eddy_console=tok-AA"))
        #expect(!t.allows(cookieHeader: "other_eddy_console=tok-A"))
        #expect(!t.allows(cookieHeader: "Eddy_console=tok-B"))
        // The header form is unchanged.
        #expect(t.allows(authorization: "Bearer tok-A") && !t.allows(authorization: "tok-A"))
    }
}

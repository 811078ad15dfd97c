import Foundation
import HTTPTypes
import Hummingbird

/// The bearer tokens `eddy serve --auth-token-file` accepts: one per line of the file (blank
/// lines and `#` comments skipped), several at once so tokens can be rotated, re-read by
/// ``reload()`` (on SIGHUP). A request is allowed when its `Authorization: Bearer <token>`
/// matches one of them, compared in constant time.
public final class BearerTokens: Sendable {
    /// Tokens longer than this are refused when loading: the comparison pads to it, so that
    /// its time does not depend on any token's length or content.
    public static let maxTokenBytes = 512

    public let path: String
    private let tokens: Locked<[[UInt8]]>

    /// Loads `path`. Throws when it cannot be read, holds no token, or a token is too long.
    public init(path: String) throws {
        self.path = path
        tokens = Locked(try Self.load(path))
    }

    /// Reads the file again; on an error the tokens in use stay and the error is thrown.
    /// - Returns: how many tokens are now accepted.
    @discardableResult
    public func reload() throws -> Int {
        let fresh = try Self.load(path)
        tokens.set(fresh)
        return fresh.count
    }

    /// Whether an `Authorization` header value carries an accepted token.
    public func allows(authorization: String?) -> Bool {
        guard let authorization else { return false }
        let utf8 = authorization.utf8
        guard utf8.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return false }
        let presented = Array(utf8.dropFirst(7))
        var allowed = false
        for token in tokens.get() where Self.constantTimeEqual(presented, token) { allowed = true }
        return allowed
    }

    /// The cookie `/ui/login` sets (HttpOnly, SameSite=Strict, Path=/ui): the token,
    /// percent-escaped. It is accepted on `/ui` routes only; the API needs the header.
    public static let consoleCookie = "eddy_console"

    /// Whether a `Cookie` header carries an accepted token in ``consoleCookie`` (compared in
    /// constant time, as the header is).
    public func allows(cookieHeader: String?) -> Bool {
        guard let cookieHeader else { return false }
        var allowed = false
        for part in cookieHeader.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces)
            guard pair.hasPrefix(Self.consoleCookie + "=") else { continue }
            let raw = String(pair.dropFirst(Self.consoleCookie.count + 1))
            let token = raw.removingPercentEncoding ?? raw
            if !token.isEmpty, allows(authorization: "Bearer " + token) { allowed = true }
        }
        return allowed
    }

    /// Equal bytes, in time that depends only on ``maxTokenBytes`` (and on `presented` being
    /// longer than that, which no accepted token is).
    static func constantTimeEqual(_ presented: [UInt8], _ token: [UInt8]) -> Bool {
        var difference = UInt(bitPattern: presented.count ^ token.count)
        for i in 0..<maxTokenBytes {
            let a = i < presented.count ? presented[i] : 0
            let b = i < token.count ? token[i] : 0
            difference |= UInt(a ^ b)
        }
        return difference == 0
    }

    static func load(_ path: String) throws -> [[UInt8]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw BearerTokenError("cannot read the token file \(path)")
        }
        var tokens: [[UInt8]] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard line.utf8.count <= maxTokenBytes, line.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw BearerTokenError("\(path):\(number + 1): a token must be 1 to \(maxTokenBytes) printable ASCII characters without spaces")
            }
            tokens.append(Array(line.utf8))
        }
        guard !tokens.isEmpty else { throw BearerTokenError("\(path) holds no token (one per line)") }
        return tokens
    }
}

public struct BearerTokenError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// Answers 401 to every request without an accepted token, except `/healthz` and `/readyz`
/// when `openHealth` (probes of an orchestrator that has no token). The console (`/ui...`)
/// also accepts the token in its cookie, and its `/ui/login` form is open; a console page
/// requested without either redirects there.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: BearerTokens
    let openHealth: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if openHealth, request.uri.path == "/healthz" || request.uri.path == "/readyz" {
            return try await next(request, context)
        }
        let path = request.uri.path
        let console = path == "/ui" || path.hasPrefix("/ui/")
        if console, path == "/ui/login" {
            return try await next(request, context)
        }
        if console, !tokens.allows(authorization: request.headers[.authorization]) {
            guard tokens.allows(cookieHeader: request.headers[.cookie]) else {
                return Response(status: .seeOther, headers: [.location: "/ui/login"])
            }
            return try await next(request, context)
        }
        guard tokens.allows(authorization: request.headers[.authorization]) else {
            var response = EddyHTTPServer.error(.unauthorized, "a bearer token is required: Authorization: Bearer <token>")
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }
}

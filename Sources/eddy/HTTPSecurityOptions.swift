import ArgumentParser
import EddyServer
import Foundation
import Logging

/// TLS and bearer tokens of an HTTP port: `eddy serve`, and `eddy run --http`. One set of
/// options, parsed and checked the same way for both.
struct HTTPSecurityOptions: ParsableArguments {
    @Option(help: "Serve HTTPS: the PEM certificate chain (server certificate first). Goes with --tls-key.")
    var tlsCert: String?

    @Option(help: "The PEM private key of --tls-cert (unencrypted; keep it readable only by eddy's user).")
    var tlsKey: String?

    @Option(help: """
        Require a bearer token (Authorization: Bearer T) on every request: the tokens are this file's lines \
        (blank lines and # comments skipped; several, to rotate them). SIGHUP re-reads the file.
        """)
    var authTokenFile: String?

    @Flag(help: "With --auth-token-file: /healthz and /readyz answer without a token (orchestrator probes).")
    var authOpenHealth = false

    /// The checked TLS files and tokens (SIGHUP reloads the tokens); throws naming the file and fix.
    func resolve(logger: Logger) throws -> (tls: ServerTLS?, tokens: BearerTokens?, openHealth: Bool) {
        var tls: ServerTLS?
        switch (tlsCert, tlsKey) {
        case (nil, nil): break
        case (let cert?, let key?):
            do { tls = try ServerTLS(certificatePath: cert, keyPath: key) } catch { throw CLIError("\(error)") }
        case (nil, _): throw CLIError("--tls-key needs --tls-cert (the certificate chain of that key)")
        case (_, nil): throw CLIError("--tls-cert needs --tls-key (the private key of that certificate)")
        }
        var tokens: BearerTokens?
        if let authTokenFile {
            do { tokens = try BearerTokens(path: authTokenFile) } catch { throw CLIError("--auth-token-file: \(error)") }
            reloadTokensOnSIGHUP(tokens!, logger: logger)
        } else if authOpenHealth {
            throw CLIError("--auth-open-health goes with --auth-token-file")
        }
        return (tls, tokens, authOpenHealth)
    }
}

extension EddyHTTPServer.Options {
    /// These options with TLS and tokens set.
    mutating func secure(_ security: (tls: ServerTLS?, tokens: BearerTokens?, openHealth: Bool)) {
        tls = security.tls
        tokens = security.tokens
        openHealth = security.openHealth
    }
}

/// Re-reads the token file on every SIGHUP; a file that fails to load leaves the tokens in use.
private func reloadTokensOnSIGHUP(_ tokens: BearerTokens, logger: Logger) {
    signal(SIGHUP, SIG_IGN)  // delivered to the dispatch source instead of ending the process
    let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
    source.setEventHandler {
        do {
            let count = try tokens.reload()
            logger.notice("SIGHUP: \(count) bearer tokens loaded from \(tokens.path)")
        } catch {
            logger.error("SIGHUP: \(error); the tokens loaded before stay in use")
        }
    }
    source.resume()
    sighupSource.set(source)
}

/// Keeps the SIGHUP source alive for the life of the process.
private let sighupSource = SourceHolder()
private final class SourceHolder: @unchecked Sendable {
    private var source: (any DispatchSourceSignal)?
    func set(_ s: any DispatchSourceSignal) { source = s }
}

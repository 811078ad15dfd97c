//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import Atomics

/// A cooperative stop request, handed to the body of a ``StageThread``.
///
/// The body polls ``isStopRequested`` between units of work; stages that
/// block should use finite timeouts so they notice a request promptly.
public final class StopToken: Sendable {
    private let flag = ManagedAtomic<Bool>(false)

    /// Creates a token on which no stop has been requested.
    public init() {}

    /// Whether a stop has been requested. Once `true`, stays `true`.
    ///
    /// Everything the requesting thread did before ``requestStop()``
    /// happens-before code that observes `true`.
    @inlinable
    public var isStopRequested: Bool {
        self.load()
    }

    @usableFromInline
    func load() -> Bool {
        self.flag.load(ordering: .acquiring)
    }

    /// Asks the owner of this token to stop. Idempotent; does not wait.
    public func requestStop() {
        self.flag.store(true, ordering: .releasing)
    }
}

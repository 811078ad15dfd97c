//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading and writing the OS-level name of the current thread, as shown by
/// `top -H`, `perf` and debuggers.
enum ThreadName {
    /// Linux limits thread names to 15 bytes plus the terminating NUL.
    static let maximumByteCount = 15

    /// The longest prefix of `name` (in whole Unicode scalars) that fits the
    /// OS limit.
    static func truncated(_ name: String) -> String {
        var byteCount = 0
        var scalars = String.UnicodeScalarView()
        for scalar in name.unicodeScalars {
            byteCount += UTF8.width(scalar)
            guard byteCount <= Self.maximumByteCount else { break }
            scalars.append(scalar)
        }
        return String(scalars)
    }

    /// Names the calling thread, truncating to what the OS accepts.
    /// Best effort: silently does nothing where unsupported.
    static func setCurrent(_ name: String) {
        #if canImport(Darwin)
        _ = pthread_setname_np(Self.truncated(name))
        #else
        guard let setName = Self.setNameFunction else { return }
        _ = setName(pthread_self(), Self.truncated(name))
        #endif
    }

    /// The calling thread's name, or `nil` if it cannot be read.
    static func current() -> String? {
        var buffer = [CChar](repeating: 0, count: 64)
        #if canImport(Darwin)
        let error = pthread_getname_np(pthread_self(), &buffer, buffer.count)
        #else
        guard let getName = Self.getNameFunction else { return nil }
        let error = getName(pthread_self(), &buffer, buffer.count)
        #endif
        guard error == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    #if !canImport(Darwin)
    // glibc declares these GNU extensions only under `_GNU_SOURCE`, which the
    // Swift `Glibc` module does not define; look them up at run time instead
    // of adding a C shim target.
    private typealias SetNameFunction = @convention(c) (pthread_t, UnsafePointer<CChar>) -> CInt
    private typealias GetNameFunction = @convention(c) (pthread_t, UnsafeMutablePointer<CChar>, Int) -> CInt

    private static let setNameFunction: SetNameFunction? = Self.lookUp("pthread_setname_np")
    private static let getNameFunction: GetNameFunction? = Self.lookUp("pthread_getname_np")

    private static func lookUp<Function>(_ symbol: String) -> Function? {
        // A nil handle is `RTLD_DEFAULT`: search the global symbol scope.
        guard let address = dlsym(nil, symbol) else { return nil }
        return unsafeBitCast(address, to: Function.self)
    }
    #endif
}

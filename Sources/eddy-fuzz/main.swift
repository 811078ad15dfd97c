#if canImport(Glibc)
import Glibc
#endif

/// Replays files: `eddy-fuzz TARGET FILE...`.
func replay() -> Int32 {
    let arguments = CommandLine.arguments
    guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[1]) else {
        print("usage: eddy-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE...")
        return 2
    }
    for path in arguments.dropFirst(2) {
        guard let file = fopen(path, "rb") else { print("cannot open \(path)"); return 1 }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        fclose(file)
        bytes.withUnsafeBytes { run(target, $0) }
    }
    print("replayed \(arguments.count - 2) inputs through \(target.rawValue)")
    return 0
}
exit(replay())

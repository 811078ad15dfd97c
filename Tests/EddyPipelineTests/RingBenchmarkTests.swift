import EddyDevKit
//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import EddyPipeline
import Testing

/// Smoke test of the benchmark entry point; it verifies the sum itself
/// (a mismatch traps). Prints the throughput, which is only meaningful in
/// release builds: `swift test -c release --filter RingBenchmarkTests`.
@Suite(.serialized) struct RingBenchmarkTests {
    @Test(arguments: [1, 64])
    func movesAllItems(batch: Int) {
        let items = 2_000_000
        let result = RingBenchmark.run(items: items, capacity: 1024, batch: batch)
        print("ring benchmark: batch \(batch): \(Int(result.itemsPerSecond / 1e6)) M items/s (\(result.seconds) s)")
        #expect(result.seconds > 0)
        #expect(result.itemsPerSecond > 0)
    }

    @Test func handlesZeroItems() {
        let result = RingBenchmark.run(items: 0, capacity: 8, batch: 4)
        #expect(result.itemsPerSecond == 0 || result.seconds > 0)
    }
}

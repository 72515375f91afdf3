import Foundation
import Testing
import TestSupport

/// The benchmark suite's quick mode as a smoke test: every workload runs against a fresh node,
/// the SwiftNIO peer and redis-server and reports its figures. No thresholds: speed is judged in
/// BENCHMARKS.md, not here.
@Suite(.serialized) struct BenchSuiteTests {
    @Test func quickSuiteRunsEveryWorkloadAgainstTheNodeAndRedis() throws {
        let bench = NodeProcess.executable.deletingLastPathComponent().appendingPathComponent("switchboard-bench").path
        let json = NSTemporaryDirectory() + "suite-\(UUID().uuidString).json"
        // scripts/test builds the SwiftNIO peer (debug) next to the package.
        let peer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Benchmarks/Peers/.build/debug/nio-relay-peer").path
        let (status, output) = try runTool(bench, ["suite", "--quick", "--json", json, "--nio-peer", peer])
        #expect(status == 0, "\(output)")
        #expect(output.contains("node÷redis"), "\(output)")
        let data = try #require(FileManager.default.contents(atPath: json))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let runs = try #require(object["runs"] as? [[String: Any]])
        #expect(runs.count == 13)
        #expect(Set(runs.compactMap { $0["target"] as? String }) == ["node", "nio", "redis"])
        for run in runs {
            let figures = run["figures"] as? [String: Any]
            #expect(figures != nil, "\(run["target"] ?? "?") \(run["workload"] ?? "?") produced no figures")
            let rates = figures?.filter { $0.key.hasSuffix("_per_second") }.compactMap { $0.value as? Double } ?? []
            #expect(rates.contains { $0 > 0 }, "\(run)")
        }
        // The latency run offers half of what the peak run delivered.
        func figures(_ workload: String) -> [String: Any]? {
            runs.first { $0["workload"] as? String == workload }?["figures"] as? [String: Any]
        }
        let peak = try #require(figures("relay peak, 10 pairs, window 8")?["messages_delivered_per_second"] as? Double)
        let offered = try #require(figures("relay at half that, open loop")?["offered_rate"] as? Double)
        #expect(offered == (peak / 2).rounded(.down))
    }
}

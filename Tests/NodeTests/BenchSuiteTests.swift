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
        #expect(runs.count == 17)
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
        // The saturated relay reports the node's read and write calls (the syscall target's figure).
        let saturated = try #require(figures("relay at saturation, window 64"))
        #expect(saturated.keys.contains { $0.hasPrefix("server_read_calls_per_") }, "\(saturated.keys.sorted())")
        #expect(saturated.keys.contains { $0.hasPrefix("server_write_calls_per_") }, "\(saturated.keys.sorted())")
        // Idle connections: all 200 held (under the node's 256 in their handshake at once, so no
        // admission grace can close a slow one), memory per connection measured.
        #expect(figures("idle connections")?["connections"] as? Double == 200)
        #expect((figures("idle connections")?["server_rss_bytes_per_connection"] as? Double).map { $0 > 0 } == true)
        #expect(output.contains("idle connections, node: 200 of 200 held"), "\(output)")
    }

    /// `connect` completes IK handshakes (after registering), spreads the connections over the
    /// node's listen ports, and keeps them alive with heartbeats past the node's idle limit;
    /// without heartbeats the same node closes them.
    @Test func connectHoldsIKConnectionsOverSeveralPortsWithHeartbeats() throws {
        let bench = NodeProcess.executable.deletingLastPathComponent().appendingPathComponent("switchboard-bench").path
        let node = try NodeProcess.serve(["--listen", "127.0.0.1:0", "--idle-seconds", "2", "--threads", "1"])
        defer { node.terminate() }
        let line = try #require(node.standardOutput.split(separator: "\n").first { $0.contains("listening on") })
        let ports = line.split(separator: " ").compactMap { $0.split(separator: ":").last.flatMap { Int($0) } }
        try #require(ports.count == 2, "\(line)")
        func connect(_ extra: [String]) throws -> [String: Any] {
            let json = NSTemporaryDirectory() + "connect-\(UUID().uuidString).json"
            let (status, output) = try runTool(bench, ["connect", "--connections", "60", "--duration", "4", "--warmup", "0",
                                                       "--target", "127.0.0.1:\(ports[0])", "--ports", "\(ports[1])", "--json", json] + extra)
            #expect(status == 0, "\(output)")
            let data = try #require(FileManager.default.contents(atPath: json))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
        // Three source addresses from the 250th on: 127.0.0.251, then 127.0.1.2 and 127.0.1.3.
        let kept = try connect(["--pattern", "ik", "--heartbeat", "1", "--sources", "3", "--source-offset", "249"])
        #expect(kept["connections"] as? Double == 60)
        #expect(kept["failed"] as? Double == 0, "\(kept)")
        #expect(kept["pattern_ik"] as? Double == 1)
        #expect((kept["heartbeats_answered"] as? Double ?? 0) >= 60, "\(kept)")
        #expect((kept["handshakes_per_second"] as? Double ?? 0) > 0)
        let dropped = try connect(["--heartbeat", "0"])
        #expect(dropped["connections"] as? Double == 0, "none held: \(dropped)")
        #expect(dropped["dropped"] as? Double == 60, "the node's idle limit closes connections that never ping: \(dropped)")
    }

    /// `connect` tries a handshake the node closed before the welcome again, a second apart, up
    /// to three attempts in all, then counts the connection failed: here the node's connection
    /// limit closes every connection past the 30th at once.
    @Test func connectTriesClosedHandshakesAgainThenCountsThemFailed() throws {
        let bench = NodeProcess.executable.deletingLastPathComponent().appendingPathComponent("switchboard-bench").path
        let node = try NodeProcess.serve(["--max-connections", "30", "--threads", "1"])
        defer { node.terminate() }
        let json = NSTemporaryDirectory() + "connect-\(UUID().uuidString).json"
        let (status, output) = try runTool(bench, ["connect", "--connections", "40", "--duration", "1", "--warmup", "0",
                                                   "--target", "127.0.0.1:\(node.port)", "--json", json])
        #expect(status == 0, "\(output)")
        let data = try #require(FileManager.default.contents(atPath: json))
        let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(report["connections"] as? Double == 30, "\(report)")
        #expect(report["failed"] as? Double == 10, "\(report)")
        #expect(report["retried"] as? Double == 20, "two more attempts for each of the 10: \(report)")
    }

    /// The load client is a product: an unreachable target or an unwritable report is one clear
    /// line and a failing exit status, at once — not a table of zeros after minutes.
    @Test func unreachableTargetsAndUnwritableReportsFailClearly() throws {
        let bench = NodeProcess.executable.deletingLastPathComponent().appendingPathComponent("switchboard-bench").path
        for scenario in [["relay"], ["fanout"], ["handshake"], ["ping"], ["offline"]] {
            // Port 1 on loopback: nothing listens, every connect is refused.
            let run = try ChildProcess(bench, scenario + ["--target", "127.0.0.1:1", "--duration", "1"])
            #expect(run.waitForExit(timeoutMilliseconds: 60_000) == 1, "\(scenario)")
            let message = String(decoding: run.standardError, as: UTF8.self)
            #expect(message.contains("is a Switchboard node listening at 127.0.0.1:1?"), "\(scenario): \(message)")
            #expect(run.standardOutput.isEmpty, "\(scenario): no table for a run that did not happen")
        }
        let missing = NSTemporaryDirectory() + "no-such-directory-\(UUID().uuidString)/report.json"
        let run = try ChildProcess(bench, ["relay", "--target", "127.0.0.1:1", "--json", missing])
        #expect(run.waitForExit() == 2)
        #expect(String(decoding: run.standardError, as: UTF8.self).contains("cannot write --json file"))
    }
}

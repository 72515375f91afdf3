import CSwitchboardShims
import Flags
import Foundation
import Glibc

/// `switchboard-bench suite`: every workload against the node and against the reference peers,
/// side by side, in one run. Each run gets a fresh server pinned to CPU 0 (the load to CPU 1) and
/// is a child `switchboard-bench` process writing JSON; the suite reads the figures back and
/// prints the comparison with the targets of the benchmark issue.
enum Suite {
    static let specs: [FlagSpec] = [
        FlagSpec("quick", help: "one-second windows and small sizes (under a minute; a smoke test, no thresholds)"),
        FlagSpec("json", value: "FILE", help: "write every figure of every run as JSON to FILE"),
        FlagSpec("malloc-counter", value: "FILE", help: "malloc_counter.so to preload into the servers (allocation counts)"),
        FlagSpec("redis-server", value: "PATH", help: "the redis-server binary (default: found on PATH)"),
        FlagSpec("nio-peer", value: "PATH",
                 help: "the SwiftNIO relay peer (default: Benchmarks/Peers/.build/release/nio-relay-peer, then debug, under the working directory)"),
        FlagSpec("help", help: "print this help"),
    ]

    static let summary = """
        Runs ping, handshake, relay and fan-out against a fresh Switchboard node; ping, handshake and relay \
        against the SwiftNIO peer (Benchmarks/Peers: the same protocol on NIO, relaying from memory); the relay \
        and fan-out workloads against redis-server (PUBLISH/SUBSCRIBE). Each server is pinned to CPU 0 and the \
        load to CPU 1; figures are per server CPU-second, with the ratios. The latency target is checked by offering \
        the node, open loop, half the messages per second it relayed in a closed-loop run just before (p99 column). \
        Last, the node holds as many idle authenticated connections as the descriptor limit allows (200 with --quick) \
        and reports its memory per connection. Benchmarks/suite.sh builds everything first.
        """

    struct Run {
        let name: String
        let target: String  // "node" or "redis"
        let scenario: String
        var arguments: [String]
        let figure: String
        /// Open loop at half the wall-clock rate the named earlier run delivered (`--rate`).
        var atHalfTheRateOf: String? = nil
    }

    static func main(_ arguments: [String]) -> Int32 {
        let flags: ParsedFlags
        do {
            flags = try ParsedFlags(arguments, specs: specs)
        } catch {
            FileHandle.standardError.write(Data("switchboard-bench: \(error)\n\n\(usageText(command: "switchboard-bench suite [flags]", summary: summary, specs: specs))".utf8))
            return 2
        }
        if flags.isSet("help") {
            print(usageText(command: "switchboard-bench suite [flags]", summary: summary, specs: specs), terminator: "")
            return 0
        }
        // Servers inherit our signal mask: undo one inherited from whoever started us (a test
        // runner that blocked SIGTERM for its own signalfd), so SIGTERM stops every server.
        _ = sb_unblock_signals()
        let quick = flags.isSet("quick")
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let bench = directory.appendingPathComponent("switchboard-bench").path
        let node = directory.appendingPathComponent("switchboard").path
        guard FileManager.default.isExecutableFile(atPath: node) else {
            FileHandle.standardError.write(Data("switchboard-bench: no node binary at \(node) (build the package first)\n".utf8))
            return 1
        }
        let redis = flags.value("redis-server") ?? findOnPath("redis-server")
        let nio = flags.value("nio-peer") ?? ["release", "debug"].map { "Benchmarks/Peers/.build/\($0)/nio-relay-peer" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        let timing = quick ? ["--duration", "1", "--warmup", "0"] : ["--duration", "5", "--warmup", "1"]
        let pairs = quick ? "10" : "50"
        // Idle connections: as many as one process may hold (node and client each raise their
        // soft descriptor limit to the hard one; a thousand kept for listeners, the store, pipes).
        let descriptorLimit = hardDescriptorLimit()
        // --quick stays under the node's 256 connections in their handshake at once (admission).
        let idleConnections = quick ? 200 : max(100, min(1_000_000, descriptorLimit - 1_000))
        // One source address has ~28,000 ephemeral ports toward the node's one port.
        let idleSources = min(250, idleConnections / 25_000 + 1)
        let ping = ["--connections", quick ? "20" : "100"]
        let relay = ["--pairs", pairs, "--window", "8", "--size", "128"]
        let saturation = ["--pairs", pairs, "--window", "64", "--size", "128"]
        let runs: [Run] = [
            Run(name: "ping, 100 connections, window 1", target: "node", scenario: "ping", arguments: ping,
                figure: "round_trip_per_server_cpu_second"),
            Run(name: "ping, 100 connections, window 1", target: "nio", scenario: "ping", arguments: ping,
                figure: "round_trip_per_server_cpu_second"),
            Run(name: "IK handshakes", target: "node", scenario: "handshake", arguments: ["--pattern", "ik"],
                figure: "handshake_per_server_cpu_second"),
            Run(name: "IK handshakes", target: "nio", scenario: "handshake", arguments: ["--pattern", "ik"],
                figure: "handshake_per_server_cpu_second"),
            Run(name: "relay, 128 B, window 8", target: "node", scenario: "relay", arguments: relay,
                figure: "message_per_server_cpu_second"),
            Run(name: "relay, 128 B, window 8", target: "nio", scenario: "relay", arguments: relay,
                figure: "message_per_server_cpu_second"),
            Run(name: "relay, 128 B, window 8", target: "redis", scenario: "redis-relay", arguments: relay,
                figure: "message_per_server_cpu_second"),
            // The syscall and allocation targets are for a saturated node: each pair keeps 64
            // messages in flight, so what piles up between two wake-ups is read and written in one
            // call (window 8 caps every read at 8 messages: 0.5 calls per message at best).
            Run(name: "relay at saturation, window 64", target: "node", scenario: "relay", arguments: saturation,
                figure: "message_per_server_cpu_second"),
            Run(name: "relay at saturation, window 64", target: "nio", scenario: "relay", arguments: saturation,
                figure: "message_per_server_cpu_second"),
            Run(name: "relay at saturation, window 64", target: "redis", scenario: "redis-relay", arguments: saturation,
                figure: "message_per_server_cpu_second"),
            // The latency target is taken at half of the peak: a closed-loop run finds the peak,
            // an open-loop one offers half of it (10 pairs, so each connection carries enough to batch).
            Run(name: "relay peak, 10 pairs, window 8", target: "node", scenario: "relay",
                arguments: ["--pairs", "10", "--window", "8", "--size", "128"], figure: "message_per_server_cpu_second"),
            Run(name: "relay at half that, open loop", target: "node", scenario: "relay",
                arguments: ["--pairs", "10", "--size", "128"], figure: "message_per_server_cpu_second",
                atHalfTheRateOf: "relay peak, 10 pairs, window 8"),
            Run(name: "fan-out to 100", target: "node", scenario: "fanout",
                arguments: ["--members", quick ? "20" : "100", "--window", "4", "--size", "64"], figure: "delivery_per_server_cpu_second"),
            Run(name: "fan-out to 100", target: "redis", scenario: "redis-fanout",
                arguments: ["--members", quick ? "20" : "100", "--window", "4", "--size", "64"], figure: "delivery_per_server_cpu_second"),
            Run(name: "fan-out to 1000", target: "node", scenario: "fanout",
                arguments: ["--members", quick ? "50" : "1000", "--window", "2", "--size", "32"], figure: "delivery_per_server_cpu_second"),
            Run(name: "fan-out to 1000", target: "redis", scenario: "redis-fanout",
                arguments: ["--members", quick ? "50" : "1000", "--window", "2", "--size", "32"], figure: "delivery_per_server_cpu_second"),
            Run(name: "idle connections", target: "node", scenario: "connect",
                arguments: ["--connections", "\(idleConnections)", "--sources", "\(idleSources)"], figure: "server_rss_bytes_per_connection"),
        ]
        var results: [[String: Any]] = []
        var table: [(String, String, Double?, [String: Any])] = []
        for (index, planned) in runs.enumerated() {
            var run = planned
            var runnable = true
            if let peakRun = run.atHalfTheRateOf {
                if let peak = table.first(where: { $0.0 == peakRun && $0.1 == run.target })?.3["messages_delivered_per_second"] as? Double,
                   peak >= 2 {
                    run.arguments += ["--rate", String(Int(peak / 2))]
                } else {
                    FileHandle.standardError.write(Data("[suite] \(run.name): no peak from \"\(peakRun)\": skipped\n".utf8))
                    runnable = false
                }
            }
            FileHandle.standardError.write(Data("[suite] \(index + 1)/\(runs.count) \(run.target): \(run.name)\n".utf8))
            var figures: [String: Any]?
            switch run.target {
            case _ where !runnable:
                break  // recorded as skipped below
            case "node":
                figures = runAgainstServer([node, "serve", "--listen", "127.0.0.1:0", "--threads", "1", "--log-level", "warn"],
                                           isNode: true, bench: bench, run: run, timing: timing,
                                           mallocCounter: flags.value("malloc-counter"))
            case "nio":
                if let nio {
                    figures = runAgainstServer([nio, "--listen", "127.0.0.1:0", "--threads", "1"], isNode: false,
                                               bench: bench, run: run, timing: timing, mallocCounter: flags.value("malloc-counter"))
                } else {
                    FileHandle.standardError.write(Data("[suite] no nio-relay-peer (swift build -c release --package-path Benchmarks/Peers): skipped\n".utf8))
                }
            default:
                if let redis {
                    figures = runAgainstRedis(redis: redis, bench: bench, run: run, timing: timing)
                } else {
                    FileHandle.standardError.write(Data("[suite] redis-server not found: reference runs skipped\n".utf8))
                }
            }
            var record: [String: Any] = ["workload": run.name, "target": run.target, "scenario": run.scenario]
            if let figures { record["figures"] = figures } else { record["skipped"] = true }
            results.append(record)
            table.append((run.name, run.target, figures?[run.figure] as? Double, figures ?? [:]))
        }
        printTable(table)
        if let idle = table.first(where: { $0.0 == "idle connections" })?.3, let held = idle["connections"] as? Double {
            let perConnection = (idle["server_rss_bytes_per_connection"] as? Double).map { String(Int($0.rounded())) } ?? "—"
            let limit = descriptorLimit < 1_001_000
                ? "; one process may hold \(descriptorLimit) descriptors here (hard limit), so one node holding 1,000,000 connections needs a higher one (Benchmarks/million.sh holds them over several nodes)" : ""
            let failed = (idle["failed"] as? Double).map { $0 > 0 ? " (\(Int($0)) failed)" : "" } ?? ""
            print("idle connections, node: \(Int(held)) of \(idleConnections) held\(failed), \(perConnection) B of node RSS per connection" + limit)
        }
        if let path = flags.value("json") {
            do {
                let data = try JSONSerialization.data(withJSONObject: ["quick": quick, "runs": results], options: [.prettyPrinted, .sortedKeys])
                try data.write(to: URL(fileURLWithPath: path))
            } catch {
                FileHandle.standardError.write(Data("switchboard-bench: cannot write \(path): \(error)\n".utf8))
                return 1
            }
        }
        return table.contains { $0.2 == nil && $0.1 == "node" } ? 1 : 0
    }

    /// Starts a fresh server (the node or the NIO peer, both of which print "… listening on
    /// ADDRESS") on CPU 0, runs one scenario against it, stops it.
    static func runAgainstServer(_ command: [String], isNode: Bool, bench: String, run: Run, timing: [String],
                                 mallocCounter: String?) -> [String: Any]? {
        let data = NSTemporaryDirectory() + "switchboard-suite-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        var environment = ProcessInfo.processInfo.environment
        let countFile = NSTemporaryDirectory() + "switchboard-suite-mallocs-\(getpid())"
        if let mallocCounter {
            environment["LD_PRELOAD"] = mallocCounter
            environment["MALLOC_COUNT_FILE"] = countFile
        }
        let output = Pipe()
        guard let server = startPinned(command + (isNode ? ["--data", data] : []), environment: environment, output: output) else {
            return nil
        }
        defer { stop(server) }
        // The server prints "switchboard listening on ADDRESS" once it accepts.
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while !text.contains("\n"), Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let address = text.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines), address.contains(":") else {
            return nil
        }
        var arguments = [run.scenario, "--target", address, "--server-pid", "\(server.processIdentifier)", "--pin-cpu", "1"]
        if mallocCounter != nil { arguments += ["--malloc-count-file", countFile] }
        return runBench(bench, arguments + run.arguments + timing)
    }

    /// Starts redis-server on CPU 0 (no persistence), runs one reference scenario, stops it.
    static func runAgainstRedis(redis: String, bench: String, run: Run, timing: [String]) -> [String: Any]? {
        guard let port = freePort() else { return nil }
        guard let server = startPinned([redis, "--bind", "127.0.0.1", "--port", "\(port)", "--save", "", "--appendonly", "no",
                                        "--protected-mode", "yes", "--daemonize", "no"]) else { return nil }
        defer { stop(server) }
        for _ in 0..<100 where !canConnect(port: port) { usleep(50_000) }
        let pid = server.processIdentifier
        return runBench(bench, [run.scenario, "--target", "127.0.0.1:\(port)", "--server-pid", "\(pid)", "--pin-cpu", "1"] + run.arguments + timing)
    }

    /// Starts `command` pinned to CPU 0; its stdout goes to `output` (or nowhere), stderr nowhere.
    static func startPinned(_ command: [String], environment: [String: String]? = nil, output: Pipe? = nil) -> Process? {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        server.arguments = ["-c", "0"] + command
        if let environment { server.environment = environment }
        server.standardOutput = output ?? FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        return (try? server.run()) != nil ? server : nil
    }

    /// SIGTERM (the node drains; redis-server and the NIO peer exit) and wait.
    static func stop(_ server: Process) {
        server.terminate()
        server.waitUntilExit()
    }

    static func runBench(_ bench: String, _ arguments: [String]) -> [String: Any]? {
        let json = NSTemporaryDirectory() + "switchboard-suite-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bench)
        process.arguments = arguments + ["--json", json]
        process.standardOutput = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        guard process.terminationStatus == 0, let data = FileManager.default.contents(atPath: json),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object
    }

    static func printTable(_ rows: [(String, String, Double?, [String: Any])]) {
        func number(_ value: Double?) -> String {
            guard let value else { return "—" }
            return value >= 100 ? String(Int(value.rounded())) : String(format: "%.2f", value)
        }
        func column(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        print(column("workload", 34) + "target  " + column("per server CPU-s", 18) + column("p99 µs", 10) + "mallocs/op  "
              + "syscalls/op  " + "node÷redis  node÷nio")
        // Idle connections have their own line below the table (bytes, not a rate).
        for row in rows where row.0 != "idle connections" {
            let p99 = row.3["latency_p99_us"] as? Double
            func perOperation(_ prefix: String) -> Double? { row.3.first { $0.key.hasPrefix(prefix) }?.value as? Double }
            let mallocs = perOperation("server_allocations_per_")
            // read + write system calls of the server per operation (/proc/PID/io syscr + syscw).
            let syscalls = perOperation("server_read_calls_per_").flatMap { reads in perOperation("server_write_calls_per_").map { reads + $0 } }
            func ratio(_ peer: String) -> String {
                guard row.1 == "node", let mine = row.2,
                      let reference = rows.first(where: { $0.0 == row.0 && $0.1 == peer })?.2, reference > 0 else { return "" }
                return String(format: "%.3f×", mine / reference)
            }
            print(column(row.0, 34) + column(row.1, 8) + column(number(row.2), 18) + column(number(p99), 10)
                  + column(number(mallocs), 12) + column(number(syscalls), 13) + column(ratio("redis"), 12) + ratio("nio"))
        }
        // The handshake target is a fraction of a bound the bench measures, not a ratio to a peer.
        for row in rows where row.1 == "node" {
            if let fraction = row.3["fraction_of_x25519_bound"] as? Double {
                print("\(row.0), node: \(String(format: "%.2f", fraction)) of the X25519 bound (4 DH + 1 key generation per handshake)")
            }
        }
    }

    /// RLIMIT_NOFILE's hard limit for this process (and the servers it starts).
    static func hardDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1_024 }
        return limit.rlim_max > 10_000_000 ? 1_000_000 + 1_000 : Int(limit.rlim_max)  // RLIM_INFINITY is all ones
    }

    static func findOnPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/sbin", "/usr/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// A loopback port nobody listens on now (the kernel picks it), for a server that cannot be
    /// told to pick one itself and report it.
    static func freePort() -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

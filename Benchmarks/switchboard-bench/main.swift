import CSwitchboardShims
import Flags
import Foundation
import Reactor

// switchboard-bench: the bundled load client. Scenarios so far: `echo` (the node's stand-in
// protocol, measuring the Reactor alone). Progress on stderr, a table on stdout, --json FILE.

let specs: [FlagSpec] = [
    FlagSpec("target", value: "HOST:PORT", help: "node to load (default 127.0.0.1:5222)"),
    FlagSpec("connections", value: "N", help: "connections to open (default 100)"),
    FlagSpec("size", value: "BYTES", help: "message size (default 128)"),
    FlagSpec("window", value: "N", help: "messages in flight per connection (default 1)"),
    FlagSpec("duration", value: "SECONDS", help: "measured window (default 5)"),
    FlagSpec("warmup", value: "SECONDS", help: "unmeasured run before the window (default 1)"),
    FlagSpec("threads", value: "N", help: "client event loops (default 1)"),
    FlagSpec("sources", value: "N", help: "loopback source addresses 127.0.0.2... to spread over (default 1)"),
    FlagSpec("pin-cpu", value: "N", help: "pin the client loops to this CPU"),
    FlagSpec("server-pid", value: "PID", help: "read the node's CPU time, syscalls and RSS from /proc"),
    FlagSpec("malloc-count-file", value: "FILE", help: "the node runs with malloc_counter.so writing here on SIGUSR2"),
    FlagSpec("label", value: "TEXT", help: "a name for this run in the output"),
    FlagSpec("json", value: "FILE", help: "write every figure as JSON to FILE"),
    FlagSpec("help", help: "print this help"),
]
let usage = usageText(command: "switchboard-bench echo [flags]", summary: "Closed-loop echo round trips against a node.", specs: specs)

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("switchboard-bench: \(message)\n\n\(usage)".utf8))
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "--help" || arguments.contains("--help") {
    print(usage, terminator: "")
    exit(0)
}
guard arguments.first == "echo" else { fail(arguments.isEmpty ? "missing scenario" : "unknown scenario '\(arguments[0])'") }
arguments.removeFirst()

let flags: ParsedFlags
var options: EchoScenario.Options
let duration: Int, warmup: Int, threads: Int
do {
    flags = try ParsedFlags(arguments, specs: specs)
    options = EchoScenario.Options(target: try SocketAddress(parsing: flags.value("target") ?? "127.0.0.1:5222"))
    options.connections = try flags.integer("connections", default: 100, range: 1...1_000_000)
    options.size = try flags.integer("size", default: 128, range: 1...1_048_576)
    options.window = try flags.integer("window", default: 1, range: 1...4096)
    options.sources = try flags.integer("sources", default: 1, range: 1...250)
    duration = try flags.integer("duration", default: 5, range: 1...3600)
    warmup = try flags.integer("warmup", default: 1, range: 0...600)
    threads = try flags.integer("threads", default: 1, range: 1...256)
} catch let error as UsageError {
    fail(error.description)
} catch {
    fail("\(error)")
}
let serverPid = flags.value("server-pid").flatMap { Int32($0) }
let probe = serverPid.map { ServerProbe(pid: $0, mallocCountFile: flags.value("malloc-count-file")) }

_ = sb_raise_nofile_limit()
var loopConfiguration = LoopConfiguration()
loopConfiguration.idleTimeoutMilliseconds = 0
let group = try EventLoopGroup(threads: threads, configuration: loopConfiguration)
if let cpu = flags.value("pin-cpu").flatMap(Int32.init) { _ = sb_pin_current_thread(cpu) }  // inherited by loops
group.start()
let scenario = EchoScenario(options: options, group: group)

func progress(_ text: String) {
    FileHandle.standardError.write(Data("\r\u{1B}[K[echo] \(text)".utf8))
}

scenario.connect()
let connectStart = sb_monotonic_ns()
while scenario.connected.load(ordering: .relaxed) + scenario.failed.load(ordering: .relaxed) < options.connections {
    if sb_monotonic_ns() - connectStart > 60_000_000_000 { break }
    progress("connecting \(scenario.connected.load(ordering: .relaxed))/\(options.connections)")
    usleep(100_000)
}
let connectSeconds = Double(sb_monotonic_ns() - connectStart) / 1e9
if scenario.failed.load(ordering: .relaxed) > 0 {
    progress("")
    FileHandle.standardError.write(Data("\nswitchboard-bench: \(scenario.failed.load(ordering: .relaxed)) connections failed\n".utf8))
}
scenario.phase.store(1, ordering: .relaxed)
for second in 0..<warmup {
    progress("warming up \(second + 1)/\(warmup) s")
    sleep(1)
}
let before = probe?.sample()
scenario.phase.store(2, ordering: .relaxed)
let windowStart = sb_monotonic_ns()
var last = 0
for second in 0..<duration {
    sleep(1)
    let now = scenario.completed.load(ordering: .relaxed)
    progress("\(second + 1)/\(duration) s  \(now - last) round trips/s")
    last = now
}
scenario.phase.store(3, ordering: .relaxed)
let wall = Double(sb_monotonic_ns() - windowStart) / 1e9
let after = probe?.sample()
let completed = scenario.completed.load(ordering: .relaxed)
usleep(200_000)
group.stop()
group.join()
progress("done\n")

let histogram = scenario.histogram()
var results: [(String, Double)] = [
    ("connections", Double(scenario.connected.load(ordering: .relaxed))),
    ("connect_seconds", connectSeconds),
    ("message_bytes", Double(options.size)),
    ("window", Double(options.window)),
    ("seconds", wall),
    ("round_trips", Double(completed)),
    ("round_trips_per_second", Double(completed) / wall),
    ("latency_p50_us", Double(histogram.value(atQuantile: 0.5)) / 1000),
    ("latency_p99_us", Double(histogram.value(atQuantile: 0.99)) / 1000),
    ("latency_p999_us", Double(histogram.value(atQuantile: 0.999)) / 1000),
    ("latency_max_us", Double(histogram.maxValue) / 1000),
]
if let before, let after, completed > 0 {
    let cpu = after.cpuSeconds - before.cpuSeconds
    results.append(("server_cpu_seconds", cpu))
    if cpu > 0 { results.append(("round_trips_per_server_cpu_second", Double(completed) / cpu)) }
    results.append(("server_read_calls_per_message", Double(after.readCalls - before.readCalls) / Double(completed)))
    results.append(("server_write_calls_per_message", Double(after.writeCalls - before.writeCalls) / Double(completed)))
    results.append(("server_rss_bytes", Double(after.rssBytes)))
    if let a = before.allocations, let b = after.allocations {
        results.append(("server_allocations_per_message", Double(b - a) / Double(completed)))
    }
}
let label = flags.value("label") ?? "echo"
print("scenario: echo (\(label))  target: \(options.target)")
for (name, value) in results {
    let text = value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.3f", value)
    print(name.padding(toLength: 36, withPad: " ", startingAt: 0) + text)
}
if let path = flags.value("json") {
    var object: [String: Any] = ["scenario": "echo", "label": label, "target": options.target.description]
    for (name, value) in results { object[name] = value }
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    try data.write(to: URL(fileURLWithPath: path))
}

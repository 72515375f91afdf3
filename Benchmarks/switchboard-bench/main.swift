import CSwitchboardShims
import Flags
import Foundation
import Reactor
import Synchronization
import Wire
import SwitchboardClient
import TLS

// switchboard-bench: the bundled load client. Scenarios: `ping` (encrypted round trips),
// `handshake` (XX or IK handshakes per second, next to the cost of one X25519 operation),
// `x25519` (that cost alone). Progress on stderr, a table on stdout, --json FILE.

func usage(_ name: String?) -> String {
    guard let name, let scenario = scenarios[name] else {
        return """
            usage: switchboard-bench <scenario> [flags]

            scenarios:
              ping        encrypted round trips (throughput, latency, server CPU, allocations, syscalls)
              handshake   XX or IK handshakes per second, with the X25519 bound
              connect     N authenticated idle connections: the node's memory per connection
              x25519      the cost of one X25519 operation
              relay       one-to-one messages per second (online, or stored for offline recipients)
              fanout      group deliveries per second
              offline     store messages for offline devices, then drain them: both rates
              redis-relay   the relay workload against redis-server (PUBLISH/SUBSCRIBE): the reference peer
              redis-fanout  the fan-out workload against redis-server
              suite       every workload against the node and the reference peers, side by side (see suite --help)

            """
    }
    return usageText(command: "switchboard-bench \(name) [flags]", summary: scenario.summary, specs: scenario.specs)
}

func fail(_ message: String, _ scenario: String?) -> Never {
    FileHandle.standardError.write(Data("switchboard-bench: \(message)\n\n\(usage(scenario))".utf8))
    exit(2)
}

/// A run that cannot go on (the target unreachable, the node refusing): one line, exit 1.
func stop(_ message: String) -> Never {
    FileHandle.standardError.write(Data("\r\u{1B}[Kswitchboard-bench: \(message)\n".utf8))
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
guard let scenarioName = arguments.first, !scenarioName.hasPrefix("--") else {
    if arguments.contains("--help") {
        print(usage(nil), terminator: "")
        exit(0)
    }
    fail("missing scenario", nil)
}
arguments.removeFirst()
if scenarioName == "suite" { exit(Suite.main(arguments)) }
guard let scenario = scenarios[scenarioName] else { fail("unknown scenario '\(scenarioName)'", nil) }
if arguments.contains("--help") {
    print(usage(scenarioName), terminator: "")
    exit(0)
}

let flags: ParsedFlags
let target: SocketAddress
let transport: ClientTransport
let duration: Int, warmup: Int, threads: Int
do {
    flags = try ParsedFlags(arguments, specs: scenario.specs)
    target = try SocketAddress(parsing: flags.value("target") ?? "127.0.0.1:5222")
    duration = try flags.integer("duration", default: 5, range: 1...3600)
    warmup = try flags.integer("warmup", default: 1, range: 0...600)
    threads = try flags.integer("threads", default: 1, range: 1...256)
    switch flags.value("transport") ?? "native" {
    case "native": transport = .native
    case "http": transport = .http(host: target.description)
    case "https":
        guard let ca = flags.value("tls-ca") else { throw UsageError("--transport https needs --tls-ca FILE") }
        transport = .https(serverName: "localhost", context: try TLSContext(clientTrusting: ca))
    case let other: throw UsageError("flag '--transport' needs native, http or https, not '\(other)'")
    }
} catch let error as UsageError {
    fail(error.description, scenarioName)
} catch {
    fail("\(error)", scenarioName)
}
// The report's file is checked before the run, not after minutes of load.
if let json = flags.value("json") {
    let directory = (json as NSString).deletingLastPathComponent
    guard access(directory.isEmpty ? "." : directory, W_OK) == 0 else {
        fail("cannot write --json file '\(json)': \(String(cString: strerror(errno)))", scenarioName)
    }
}
let probe = flags.value("server-pid").flatMap { Int32($0) }.map {
    ServerProbe(pid: $0, mallocCountFile: flags.value("malloc-count-file"))
}
if let cpu = flags.value("pin-cpu").flatMap(Int32.init) { _ = sb_pin_current_thread(cpu) }  // loops inherit it
_ = sb_raise_nofile_limit()
let label = flags.value("label") ?? scenarioName

func integer(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) -> Int {
    do { return try flags.integer(name, default: fallback, range: range) } catch { fail(error.description, scenarioName) }
}

/// Waits `seconds` of measurement, printing progress with the per-second rate of `counter`.
func measure(_ seconds: Int, _ counter: () -> Int, unit: String) -> Double {
    let start = sb_monotonic_ns()
    var last = counter()
    for second in 0..<seconds {
        sleep(1)
        let now = counter()
        progress(scenarioName, "\(second + 1)/\(seconds) s  \(now - last) \(unit)/s")
        last = now
    }
    return Double(sb_monotonic_ns() - start) / 1e9
}

/// Waits until `done` or `limit` seconds pass, showing `status` as progress; also gives up once
/// `status` has not changed for `stall` seconds (a target that never answers).
func wait(limit seconds: Double, stall: Double = .infinity, until done: () -> Bool, status: () -> String) {
    let start = sb_monotonic_ns()
    var shown = "", changed = start
    while !done(), Double(sb_monotonic_ns() - start) / 1e9 < seconds {
        let text = status()
        if text != shown {
            progress(scenarioName, text)
            (shown, changed) = (text, sb_monotonic_ns())
        } else if Double(sb_monotonic_ns() - changed) / 1e9 >= stall {
            return
        }
        usleep(100_000)
    }
}

/// Connecting or registering `expected` of `what`: waits, showing "VERB n/expected WHAT", until all
/// are ready — or, `partial`, until each has come up or failed — or one fails, or nothing moves for
/// `stall` seconds, or `limit` passes; then stops the run unless all (`partial`: at least one) are
/// ready.
func awaitReady(_ verb: String, _ what: String, expected: Int, limit: Double = 120, stall: Double = 15,
                partial: Bool = false, server: String = "a Switchboard node", ready: () -> Int, failed: () -> Int) {
    wait(limit: limit, stall: stall, until: { partial ? ready() + failed() >= expected : ready() >= expected || failed() > 0 }) {
        "\(verb) \(ready())/\(expected) \(what)"
    }
    guard ready() < (partial ? 1 : expected) else { return }
    let why = failed() > 0 ? "\(failed()) failed" : "no answer"
    stop("only \(ready()) of \(expected) \(what) ready (\(why)); is \(server) listening at \(target)?")
}

/// `--sources` and `--source-offset` (`sourceFlags`): where ping's and connect's connections come from.
func readSources(into options: inout PingScenario.Options) {
    options.sources = integer("sources", 1, 1...250)
    options.sourceOffset = integer("source-offset", 0, 0...60_000)
}

/// The measured part of a run: warm up, sample the server, record for `duration`, sample again,
/// stop the load. Phases: 1 warm-up, 2 recording, 3 stopping.
struct Window {
    let seconds: Double
    let before: ServerSample?
    let after: ServerSample?
    let completed: Int
}

func measuredWindow(setPhase: (Int) -> Void, completed: () -> Int, unit: String, group: EventLoopGroup) -> Window {
    setPhase(1)
    if warmup > 0 { sleep(UInt32(warmup)) }
    let before = probe?.sample()
    setPhase(2)
    let wall = measure(duration, completed, unit: unit)
    setPhase(3)
    let after = probe?.sample()
    let count = completed()
    usleep(300_000)
    group.stop()
    group.join()
    progress(scenarioName, "done\n")
    if count == 0 { stop("no \(unit) completed in the measured \(duration) s; the target stopped answering") }
    return Window(seconds: wall, before: before, after: after, completed: count)
}

func makeGroup() -> EventLoopGroup {
    var configuration = LoopConfiguration()
    configuration.idleTimeoutMilliseconds = 0
    let group = try! EventLoopGroup(threads: threads, configuration: configuration)
    group.start()
    return group
}

var report = Report(scenario: scenarioName, label: label)
switch scenarioName {
case "x25519":
    let costs = X25519Probe.measure(seconds: Double(duration))
    report.add("x25519_dh_microseconds", costs.dhMicroseconds)
    report.add("x25519_keygen_microseconds", costs.keygenMicroseconds)

case "ping":
    var options = PingScenario.Options(target: target, transport: transport)
    options.connections = integer("connections", 100, 1...1_000_000)
    options.window = integer("window", 1, 1...4096)
    readSources(into: &options)
    let group = makeGroup()
    let ping = PingScenario(options: options, group: group)
    let connectStart = sb_monotonic_ns()
    ping.connect()
    // Rates over the connections that came up (failed_connections says how many did not); none is an error.
    awaitReady("connecting", "connections", expected: options.connections, partial: true,
               ready: { ping.welcomed.load(ordering: .relaxed) }, failed: { ping.failed.load(ordering: .relaxed) })
    report.add("connections", Double(ping.welcomed.load(ordering: .relaxed)))
    report.add("connect_seconds", Double(sb_monotonic_ns() - connectStart) / 1e9)
    let window = measuredWindow(
        setPhase: { ping.phase.store($0, ordering: .relaxed) }, completed: { ping.completed.load(ordering: .relaxed) },
        unit: "round trips", group: group)
    let (wall, before, after, completed) = (window.seconds, window.before, window.after, window.completed)
    let histogram = ping.histogram()
    report.add("window", Double(options.window))
    report.add("seconds", wall)
    report.add("round_trips", Double(completed))
    report.add("round_trips_per_second", Double(completed) / wall)
    report.add("latency_p50_us", Double(histogram.value(atQuantile: 0.5)) / 1000)
    report.add("latency_p99_us", Double(histogram.value(atQuantile: 0.99)) / 1000)
    report.add("latency_p999_us", Double(histogram.value(atQuantile: 0.999)) / 1000)
    report.add("latency_max_us", Double(histogram.maxValue) / 1000)
    report.add("failed_connections", Double(ping.failed.load(ordering: .relaxed)))
    report.addServer(before: before, after: after, operations: completed, unit: "round_trip")

case "connect":
    var options = PingScenario.Options(target: target, transport: transport)
    options.connections = integer("connections", 1000, 1...1_000_000)
    readSources(into: &options)
    options.window = 0
    options.heartbeatMilliseconds = integer("heartbeat", 60, 0...3_600) * 1_000
    guard let pattern = HandshakeScenario.Pattern(rawValue: flags.value("pattern") ?? "xx") else {
        fail("flag '--pattern' needs xx or ik", scenarioName)
    }
    options.resume = pattern == .ik
    if let ports = flags.value("ports") {
        // The other listen ports of the node at --target's host.
        let host = String(target.description[..<(target.description.lastIndex(of: ":") ?? target.description.endIndex)])
        for port in ports.split(separator: ",", omittingEmptySubsequences: false) {
            guard let number = Int(port), (1...65_535).contains(number), let address = try? SocketAddress(parsing: "\(host):\(number)") else {
                fail("flag '--ports' needs port numbers separated by commas, not '\(ports)'", scenarioName)
            }
            options.moreTargets.append(address)
        }
    }
    let group = makeGroup()
    let idle = PingScenario(options: options, group: group)
    let before = probe?.sample()
    if options.resume {
        // Every connection registers (XX) and closes; then all come back with IK, which is timed.
        let registerStart = sb_monotonic_ns()
        idle.connect()
        awaitReady("registered", "connections", expected: options.connections, limit: 300, stall: .infinity, partial: true,
                   ready: { idle.registered.load(ordering: .relaxed) }, failed: { idle.failed.load(ordering: .relaxed) })
        report.add("register_seconds", Double(sb_monotonic_ns() - registerStart) / 1e9)
    }
    let connectStart = sb_monotonic_ns()
    if options.resume { idle.resumeAll() } else { idle.connect() }
    // How far it got is the figure (a descriptor limit, the node's --max-connections); none at all is an error.
    awaitReady("connected", "connections", expected: options.connections, limit: 300, stall: .infinity, partial: true,
               ready: { idle.welcomed.load(ordering: .relaxed) }, failed: { idle.failed.load(ordering: .relaxed) - idle.dropped.load(ordering: .relaxed) })
    let connectSeconds = Double(sb_monotonic_ns() - connectStart) / 1e9
    for second in 0..<duration {
        progress("connect", "holding \(idle.held) idle connections "
                 + "(\(idle.failed.load(ordering: .relaxed)) failed, \(idle.retried.load(ordering: .relaxed)) retried) \(second + 1)/\(duration) s")
        sleep(1)
    }
    let after = probe?.sample()
    // Held: welcomed and still open at the end (an idle limit or the node may have closed some).
    let held = idle.held
    idle.phase.store(3, ordering: .relaxed)
    group.stop()
    group.join()
    progress("connect", "done\n")
    report.add("connections", Double(held))
    report.add("failed", Double(idle.failed.load(ordering: .relaxed)))
    report.add("retried", Double(idle.retried.load(ordering: .relaxed)))
    report.add("connect_seconds", connectSeconds)
    report.add("pattern_" + pattern.rawValue, 1)
    report.add("dropped", Double(idle.dropped.load(ordering: .relaxed)))
    report.add("handshakes_per_second", Double(idle.welcomed.load(ordering: .relaxed)) / connectSeconds)
    report.add("heartbeats_answered", Double(idle.heartbeats.load(ordering: .relaxed)))
    if let before, let after, held > 0 {
        report.add("server_rss_before_bytes", Double(before.rssBytes))
        report.add("server_rss_after_bytes", Double(after.rssBytes))
        report.add("server_rss_bytes_per_connection", (Double(after.rssBytes) - Double(before.rssBytes)) / Double(held))
        report.add("server_anonymous_bytes_per_connection", (Double(after.anonymousBytes) - Double(before.anonymousBytes)) / Double(held))
    }

case "fanout":
    let members = integer("members", 100, 2...1_024)
    let fanout = FanoutScenario(target: target, members: members, window: integer("window", 4, 1...64),
                                size: integer("size", 64, 1...4_000), group: makeGroup())
    fanout.start()
    awaitReady("registering", "members", expected: members - 1,
               ready: { fanout.ready.load(ordering: .relaxed) }, failed: { fanout.failed.load(ordering: .relaxed) })
    let groupReady = Atomic<Bool>(false)
    fanout.startSender { groupReady.store(true, ordering: .relaxed) }
    wait(limit: 60, until: { groupReady.load(ordering: .relaxed) || fanout.failed.load(ordering: .relaxed) > 0 }) { "creating the group" }
    if !groupReady.load(ordering: .relaxed) { stop("the node did not create the group (\(fanout.failed.load(ordering: .relaxed)) failed)") }
    fanout.beginSending()
    let window = measuredWindow(
        setPhase: { fanout.phase.store($0, ordering: .relaxed) }, completed: { fanout.delivered.load(ordering: .relaxed) },
        unit: "deliveries", group: fanout.group)
    report.add("members", Double(members))
    report.add("seconds", window.seconds)
    report.add("group_deliveries_per_second", Double(window.completed) / window.seconds)
    report.add("group_messages_per_second", Double(fanout.messages.load(ordering: .relaxed)) / window.seconds)
    report.add("failed", Double(fanout.failed.load(ordering: .relaxed)))
    report.addServer(before: window.before, after: window.after, operations: window.completed, unit: "delivery")

case "relay":
    var options = RelayScenario.Options(target: target, transport: transport)
    options.pairs = integer("pairs", 50, 1...5_000)
    options.window = integer("window", 8, 1...200)
    options.size = integer("size", 128, 16...60_000)
    options.offline = flags.isSet("offline")
    options.rate = integer("rate", 0, 0...10_000_000)
    options.tickMicroseconds = integer("tick-us", 1_000, 50...100_000)
    let group = makeGroup()
    let relay = RelayScenario(options: options, group: group)
    relay.start()
    awaitReady("registering", "pairs", expected: options.pairs,
               ready: { relay.ready.load(ordering: .relaxed) }, failed: { relay.failed.load(ordering: .relaxed) })
    relay.beginSending()
    let offline = options.offline
    let window = measuredWindow(
        setPhase: { relay.phase.store($0, ordering: .relaxed) },
        completed: { offline ? relay.accepted.load(ordering: .relaxed) : relay.delivered.load(ordering: .relaxed) },
        unit: options.offline ? "stored" : "delivered", group: group)
    report.add("pairs", Double(options.pairs))
    if options.rate > 0 { report.add("offered_rate", Double(options.rate)) } else { report.add("window", Double(options.window)) }
    report.add("message_bytes", Double(options.size))
    report.add("seconds", window.seconds)
    if options.offline {
        report.add("messages_stored_per_second", Double(window.completed) / window.seconds)
    } else {
        let histogram = relay.histogram()
        report.add("messages_delivered_per_second", Double(window.completed) / window.seconds)
        report.add("accepted_per_second", Double(relay.accepted.load(ordering: .relaxed)) / window.seconds)
        report.add("latency_p50_us", Double(histogram.value(atQuantile: 0.5)) / 1000)
        report.add("latency_p99_us", Double(histogram.value(atQuantile: 0.99)) / 1000)
        report.add("latency_max_us", Double(histogram.maxValue) / 1000)
    }
    report.add("failed", Double(relay.failed.load(ordering: .relaxed)))
    report.addServer(before: window.before, after: window.after, operations: window.completed, unit: "message")

case "offline":
    let pairs = integer("pairs", 50, 1...5_000)
    let group = makeGroup()
    let offline = OfflineScenario(target: target, pairs: pairs, messages: integer("messages", 20_000, 1...10_000_000),
                                  window: integer("window", 32, 1...256), size: integer("size", 128, 16...60_000), group: group)
    offline.start()
    awaitReady("registering", "pairs", expected: pairs,
               ready: { offline.ready.load(ordering: .relaxed) }, failed: { offline.failed.load(ordering: .relaxed) })
    let total = offline.total
    func phase(_ name: String, limit: Double, _ counter: () -> Int) -> (seconds: Double, before: ServerSample?, after: ServerSample?) {
        let before = probe?.sample()
        let start = sb_monotonic_ns()
        wait(limit: limit, until: { counter() >= total || offline.failed.load(ordering: .relaxed) > 0 }) {
            "\(name) \(counter())/\(total)"
        }
        let seconds = Double(sb_monotonic_ns() - start) / 1e9
        return (seconds, before, probe?.sample())
    }
    offline.beginStoring()
    let storing = phase("storing", limit: 600) { offline.stored.load(ordering: .relaxed) }
    offline.beginDraining()
    let draining = phase("draining", limit: 600) { offline.drained.load(ordering: .relaxed) }
    group.stop()
    group.join()
    progress(scenarioName, "done\n")
    let stored = offline.stored.load(ordering: .relaxed), drained = offline.drained.load(ordering: .relaxed)
    report.add("pairs", Double(pairs))
    report.add("messages", Double(total))
    report.add("stored", Double(stored))
    report.add("drained", Double(drained))
    report.add("failed", Double(offline.failed.load(ordering: .relaxed)))
    report.add("stored_per_second", Double(stored) / storing.seconds)
    report.add("drained_per_second", Double(drained) / draining.seconds)
    if let b = storing.before, let a = storing.after, a.cpuSeconds > b.cpuSeconds {
        report.add("stored_per_server_cpu_second", Double(stored) / (a.cpuSeconds - b.cpuSeconds))
    }
    if let b = draining.before, let a = draining.after, a.cpuSeconds > b.cpuSeconds {
        report.add("drained_per_server_cpu_second", Double(drained) / (a.cpuSeconds - b.cpuSeconds))
    }
    if let a = storing.after, let b = storing.before, let c = draining.after, let d = draining.before,
       let s0 = b.allocations, let s1 = a.allocations, let d0 = d.allocations, let d1 = c.allocations {
        report.add("server_allocations_per_stored_message", Double(s1 - s0) / Double(max(stored, 1)))
        report.add("server_allocations_per_drained_message", Double(d1 - d0) / Double(max(drained, 1)))
    }
    if stored < total || drained < total { stop("only \(stored) stored and \(drained) drained of \(total)") }

case "redis-relay", "redis-fanout":
    let relay = scenarioName == "redis-relay"
    let mode: RedisScenario.Mode = relay ? .relay(pairs: integer("pairs", 50, 1...5_000)) : .fanout(members: integer("members", 100, 2...1_024))
    let window = integer("window", relay ? 8 : 4, 1...200)
    let size = integer("size", relay ? 128 : 64, 16...60_000)
    let group = makeGroup()
    let redis = RedisScenario(target: target, mode: mode, window: window, size: size, group: group)
    redis.start()
    awaitReady("subscribing", "connections", expected: redis.expected, limit: 60, server: "redis-server",
               ready: { redis.ready.load(ordering: .relaxed) }, failed: { redis.failed.load(ordering: .relaxed) })
    redis.beginSending()
    let measured = measuredWindow(
        setPhase: { redis.phase.store($0, ordering: .relaxed) }, completed: { redis.delivered.load(ordering: .relaxed) },
        unit: "deliveries", group: group)
    let histogram = redis.histogram()
    switch mode {
    case .relay(let pairs): report.add("pairs", Double(pairs))
    case .fanout(let members): report.add("members", Double(members))
    }
    report.add("window", Double(window))
    report.add("message_bytes", Double(size))
    report.add("seconds", measured.seconds)
    report.add(relay ? "messages_delivered_per_second" : "group_deliveries_per_second", Double(measured.completed) / measured.seconds)
    if !relay { report.add("group_messages_per_second", Double(redis.messages.load(ordering: .relaxed)) / measured.seconds) }
    report.add("latency_p50_us", Double(histogram.value(atQuantile: 0.5)) / 1000)
    report.add("latency_p99_us", Double(histogram.value(atQuantile: 0.99)) / 1000)
    report.add("latency_max_us", Double(histogram.maxValue) / 1000)
    report.add("failed", Double(redis.failed.load(ordering: .relaxed)))
    report.addServer(before: measured.before, after: measured.after, operations: measured.completed, unit: relay ? "message" : "delivery")

case "handshake":
    guard let pattern = HandshakeScenario.Pattern(rawValue: flags.value("pattern") ?? "ik") else {
        fail("flag '--pattern' needs xx or ik", scenarioName)
    }
    let concurrency = integer("concurrency", 32, 1...10_000)
    // The X25519 costs on this (pinned) thread, before the load starts and after it ends.
    let earlier = X25519Probe.measure()
    let group = makeGroup()
    let handshakes = HandshakeScenario(target: target, pattern: pattern, concurrency: concurrency, group: group)
    handshakes.start()
    awaitReady("registering", "devices", expected: concurrency, limit: 60,
               ready: { handshakes.registered.load(ordering: .relaxed) }, failed: { handshakes.failed.load(ordering: .relaxed) })
    let window = measuredWindow(
        setPhase: { handshakes.phase.store($0, ordering: .relaxed) }, completed: { handshakes.completed.load(ordering: .relaxed) },
        unit: "handshakes", group: group)
    let (wall, before, after, completed) = (window.seconds, window.before, window.after, window.completed)
    // Again after the load, keeping the cheaper figures: the probe only ever overestimates.
    let later = X25519Probe.measure()
    let costs = X25519Probe.Costs(
        dhMicroseconds: min(earlier.dhMicroseconds, later.dhMicroseconds),
        keygenMicroseconds: min(earlier.keygenMicroseconds, later.keygenMicroseconds))
    // Server-side X25519 work per handshake: IK responder: e (keygen), es, ss, ee, se (4 DH);
    // XX responder: e (keygen), ee, es, se (3 DH).
    let dhOperations = pattern == .ik ? 4 : 3
    let bound = costs.bound(dh: dhOperations, keygen: 1)
    report.add("pattern_" + pattern.rawValue, 1)
    report.add("concurrency", Double(concurrency))
    report.add("seconds", wall)
    report.add("handshakes", Double(completed))
    report.add("handshakes_per_second", Double(completed) / wall)
    report.add("failed", Double(handshakes.failed.load(ordering: .relaxed)))
    report.add("x25519_dh_microseconds", costs.dhMicroseconds)
    report.add("x25519_keygen_microseconds", costs.keygenMicroseconds)
    report.add("server_x25519_dh_per_handshake", Double(dhOperations))
    report.add("server_x25519_keygen_per_handshake", 1)
    report.add("x25519_bound_handshakes_per_core_second", bound)
    report.addServer(before: before, after: after, operations: completed, unit: "handshake")
    if let before, let after, after.cpuSeconds > before.cpuSeconds {
        let perCore = Double(completed) / (after.cpuSeconds - before.cpuSeconds)
        report.add("fraction_of_x25519_bound", perCore / bound)
    }
default:
    fail("unknown scenario '\(scenarioName)'", nil)
}
do {
    try report.print(json: flags.value("json"))
} catch {
    stop("cannot write --json file '\(flags.value("json") ?? "")': \(error.localizedDescription)")
}

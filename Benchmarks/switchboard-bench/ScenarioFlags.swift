import Flags

// The command line of switchboard-bench: flags every scenario takes, and each scenario's own.

let common: [FlagSpec] = [
    FlagSpec("target", value: "HOST:PORT", help: "node to load (default 127.0.0.1:5222)"),
    FlagSpec("transport", value: "MODE", help: "native, http or https: the native port or the HTTP fallback at --target (ping, connect, relay; default native)"),
    FlagSpec("tls-ca", value: "FILE", help: "PEM certificate(s) to trust for --transport https (the node's must name localhost)"),
    FlagSpec("duration", value: "SECONDS", help: "measured window (default 5)"),
    FlagSpec("warmup", value: "SECONDS", help: "unmeasured run before the window (default 1)"),
    FlagSpec("threads", value: "N", help: "client event loops (default 1)"),
    FlagSpec("pin-cpu", value: "N", help: "pin the client loops to this CPU"),
    FlagSpec("server-pid", value: "PID", help: "read the node's CPU time, syscalls and RSS from /proc"),
    FlagSpec("malloc-count-file", value: "FILE", help: "the node runs with malloc_counter.so writing here on SIGUSR2"),
    FlagSpec("label", value: "TEXT", help: "a name for this run in the output"),
    FlagSpec("json", value: "FILE", help: "write every figure as JSON to FILE"),
    FlagSpec("help", help: "print this help"),
]
// Where ping's and connect's connections come from.
let sourceFlags: [FlagSpec] = [
    FlagSpec("sources", value: "N", help: "loopback source addresses 127.0.0.2... to spread over (default 1)"),
    FlagSpec("source-offset", value: "N", help: "start at the N-th source address (127.0.0.2 is 0, 127.0.0.251 is 249, 127.0.1.2 is 250): load processes on distinct addresses each have their own ephemeral ports (default 0)"),
]
let scenarios: [String: (summary: String, specs: [FlagSpec])] = [
    "ping": ("Closed-loop encrypted ping/pong round trips: each connection registers, then keeps WINDOW pings in flight.", [
        FlagSpec("connections", value: "N", help: "connections (default 100)"),
        FlagSpec("window", value: "N", help: "pings in flight per connection (default 1)"),
    ] + sourceFlags + common),
    "handshake": ("Handshakes per second: connect, handshake, welcome, close, repeat.", [
        FlagSpec("pattern", value: "xx|ik", help: "ik: resume with the last token; xx: log in without a cached key (default ik)"),
        FlagSpec("concurrency", value: "N", help: "handshakes in flight (default 32)"),
    ] + common),
    "x25519": ("The cost of one X25519 operation on this machine.", common),
    "fanout": ("Group fan-out: one sender, MEMBERS-1 recipients in one group, WINDOW group messages in flight.", [
        FlagSpec("members", value: "N", help: "group size including the sender (default 100)"),
        FlagSpec("window", value: "N", help: "group messages in flight (default 4)"),
        FlagSpec("size", value: "BYTES", help: "ciphertext size per copy (default 64)"),
    ] + common),
    "offline": ("Store and drain: MESSAGES for PAIRS offline devices, stored durably, then drained when they come back.", [
        FlagSpec("pairs", value: "N", help: "offline recipients, each with its own sender (default 50)"),
        FlagSpec("messages", value: "N", help: "messages in all (default 20000)"),
        FlagSpec("window", value: "N", help: "sends waiting per sender (default 32)"),
        FlagSpec("size", value: "BYTES", help: "ciphertext size (default 128)"),
    ] + common),
    "redis-relay": ("The relay workload against Redis (--target HOST:PORT of redis-server): PUBLISH to a channel per recipient, recipients SUBSCRIBEd.", [
        FlagSpec("pairs", value: "N", help: "publisher/subscriber pairs (default 50)"),
        FlagSpec("window", value: "N", help: "messages in flight per publisher (default 8)"),
        FlagSpec("size", value: "BYTES", help: "message size (default 128)"),
    ] + common),
    "redis-fanout": ("The fan-out workload against Redis: one publisher, MEMBERS-1 subscribers on one channel.", [
        FlagSpec("members", value: "N", help: "group size including the publisher (default 100)"),
        FlagSpec("window", value: "N", help: "messages in flight (default 4)"),
        FlagSpec("size", value: "BYTES", help: "message size (default 64)"),
    ] + common),
    "relay": ("One-to-one messages through the node: PAIRS sender/recipient pairs, WINDOW messages in flight each.", [
        FlagSpec("pairs", value: "N", help: "sender/recipient pairs (default 50)"),
        FlagSpec("window", value: "N", help: "messages in flight per sender (default 8)"),
        FlagSpec("size", value: "BYTES", help: "ciphertext size (default 128)"),
        FlagSpec("offline", help: "recipients stay offline: measure messages stored durably per second"),
        FlagSpec("rate", value: "N", help: "open loop: send N messages per second in all, whatever the node answers (default: closed loop)"),
        FlagSpec("tick-us", value: "N", help: "open loop: the pacer hands out the sends due every N microseconds (default 1000)"),
    ] + common),
    "connect": ("Opens N connections that complete a handshake and stay idle, pinging once per heartbeat; reports handshakes per second and the node's memory per connection.", [
        FlagSpec("connections", value: "N", help: "connections (default 1000)"),
        FlagSpec("pattern", value: "xx|ik", help: "xx: each connection registers (XX) and stays; ik: each registers, closes, and comes back with IK resuming with its token, which is what is timed (default xx)"),
        FlagSpec("ports", value: "P1,P2,...", help: "more listen ports of --target's host to spread over, round robin with --target's (the node listens on each with --listen)"),
        FlagSpec("heartbeat", value: "SECONDS", help: "each held connection pings this often, so the node's --idle-seconds never closes it; 0: never (default 60)"),
    ] + sourceFlags + common),
]

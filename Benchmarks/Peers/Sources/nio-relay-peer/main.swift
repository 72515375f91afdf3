import NIOCore
import NIOPosix
import Glibc
import Noise

// nio-relay-peer [--listen HOST:PORT] [--threads N]
// Prints "nio-relay-peer listening on HOST:PORT" once it accepts, like the node does.
var host = "127.0.0.1", port = 0, threads = 1
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    switch flag {
    case "--listen":
        guard let value = arguments.popFirst(), let colon = value.lastIndex(of: ":"), let parsed = Int(value[value.index(after: colon)...]) else {
            fatalError("--listen needs HOST:PORT")
        }
        host = String(value[..<colon])
        port = parsed
    case "--threads":
        guard let value = arguments.popFirst(), let parsed = Int(value), parsed > 0 else { fatalError("--threads needs N") }
        threads = parsed
    default:
        fatalError("usage: nio-relay-peer [--listen HOST:PORT] [--threads N]")
    }
}
guard Sodium.initialise() else { fatalError("libsodium failed to initialise") }
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let directory = Directory()
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            let decoder = FrameDecoder()
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
            try channel.pipeline.syncOperations.addHandler(SessionHandler(directory: directory, decoder: decoder))
        }
    }
let channel = try bootstrap.bind(host: host, port: port).wait()
print("nio-relay-peer listening on \(host):\(channel.localAddress?.port ?? port)")
fflush(nil)  // all streams: stdout may be a pipe
try channel.closeFuture.wait()

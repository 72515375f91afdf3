import CSwitchboardShims
import Glibc
import Reactor
import Synchronization
import Testing
import TestSupport

@Suite struct ConnectionTests {
    static let modes: [TriggerMode] = [.edge, .level]

    @Test(arguments: modes)
    func echoRoundTripsSmallAndLargeWrites(mode: TriggerMode) throws {
        var configuration = LoopConfiguration()
        configuration.trigger = mode
        let harness = try LoopHarness(configuration: configuration)
        let port = try startEcho(harness, handler: EchoForTests())
        let client = try BlockingSocket(port: port)
        for size in [1, 100, 16_384, 100_000, 1_000_000] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ size) }
            // Send from another thread so a large payload cannot deadlock on full buffers.
            let fd = client.fd
            let payloadCopy = payload
            runThreadsDetached {
                payloadCopy.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                        if n <= 0 { return }
                        offset += n
                    }
                }
            }
            let echoed = try client.receive(exactly: size)
            #expect(echoed == payload, "size \(size)")
        }
    }

    @Test(arguments: modes)
    func halfCloseFlushesTheEchoThenCloses(mode: TriggerMode) throws {
        var configuration = LoopConfiguration()
        configuration.trigger = mode
        let harness = try LoopHarness(configuration: configuration)
        let handler = EchoForTests()
        let port = try startEcho(harness, handler: handler)
        let client = try BlockingSocket(port: port)
        try client.send("last words")
        client.shutdownWrite()
        #expect(try client.receive(exactly: 10) == Array("last words".utf8))
        #expect(client.waitForClose())
        let loop = harness.group.loops[0]
        #expect(waitUntil { (try? harness.onLoop(loop) { handler.closeReasons.count }) == 1 })
        #expect(try harness.onLoop(loop) { handler.closeReasons } == [.peerClosed])
    }

    @Test(arguments: modes)
    func slowReaderIsHeldAtTheWatermarkAndCatchesUp(mode: TriggerMode) throws {
        var configuration = LoopConfiguration()
        configuration.trigger = mode
        configuration.outboundHighWatermark = 128 * 1024
        configuration.outboundLowWatermark = 32 * 1024
        let harness = try LoopHarness(configuration: configuration)
        let handler = EchoForTests()
        let port = try startEcho(harness, handler: handler)
        let client = try BlockingSocket(port: port)
        client.setNonBlocking()
        // Write until every buffer between us and the node is full; never read.
        var sent = 0
        for _ in 0..<50 {
            sent += client.sendUntilFull()
            sleepMilliseconds(10)
        }
        let loop = harness.group.loops[0]
        let (queued, paused, closed) = try harness.onLoop(loop) {
            let connection = handler.connections[0]
            return (connection.outboundBytes, connection.isReadPaused, connection.isClosed)
        }
        #expect(!closed)
        #expect(paused, "reading stops above the high watermark")
        #expect(queued >= configuration.outboundLowWatermark, "paused means the queue has not drained to the low mark")
        #expect(queued <= configuration.outboundHighWatermark + configuration.readBufferBytes,
                "the queue never grows past the watermark plus one read")
        #expect(sent > queued, "the rest waits in kernel buffers, not in the node")
        // Now read everything: all bytes come back and reading resumes.
        let flags = fcntl(client.fd, F_GETFL)
        _ = fcntl(client.fd, F_SETFL, flags & ~O_NONBLOCK)
        let echoed = try client.receive(exactly: sent)
        #expect(echoed.count == sent)
        #expect(echoed.allSatisfy { $0 == 0x61 })
        let resumed = try harness.onLoop(loop) { !handler.connections[0].isReadPaused }
        #expect(resumed)
    }

    @Test func peerThatNeverReadsIsClosedAtTheHardLimit() throws {
        var configuration = LoopConfiguration()
        configuration.outboundHighWatermark = 64 * 1024
        configuration.outboundHardLimit = 96 * 1024
        configuration.readBufferBytes = 64 * 1024
        let harness = try LoopHarness(configuration: configuration)
        let handler = EchoForTests()
        let loop = harness.group.loops[0]
        // A handler that answers every byte with 4 bytes outgrows the watermark in one read.
        final class Amplifier: ConnectionHandler, @unchecked Sendable {
            var reasons: [CloseReason] = []
            func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
                for _ in 0..<4 { connection.write(bytes) }
            }
            func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) { reasons.append(reason) }
        }
        let amplifier = Amplifier()
        _ = handler
        let port = try harness.onLoop(loop) {
            Int(try Listener(address: try SocketAddress(parsing: "127.0.0.1:0"), on: loop) { _ in amplifier }.address.port)
        }
        let client = try BlockingSocket(port: port)
        client.setNonBlocking()
        for _ in 0..<100 {
            _ = client.sendUntilFull()
            if (try? harness.onLoop(loop) { amplifier.reasons.count }) == 1 { break }
            sleepMilliseconds(10)
        }
        #expect(try harness.onLoop(loop) { amplifier.reasons } == [.outboundOverflow])
    }

    @Test(arguments: modes)
    func idleConnectionsAreClosed(mode: TriggerMode) throws {
        var configuration = LoopConfiguration()
        configuration.trigger = mode
        configuration.idleTimeoutMilliseconds = 200
        let harness = try LoopHarness(configuration: configuration)
        let handler = EchoForTests()
        let port = try startEcho(harness, handler: handler)
        let active = try BlockingSocket(port: port)
        let idle = try BlockingSocket(port: port)
        // Keep one connection busy past the idle timeout; the other stays silent.
        for _ in 0..<6 {
            try active.send("x")
            _ = try active.receive(exactly: 1)
            sleepMilliseconds(60)
        }
        #expect(idle.waitForClose())
        try active.send("y")
        #expect(try active.receive(exactly: 1) == [UInt8(ascii: "y")])
        let reasons = try harness.onLoop(harness.group.loops[0]) { handler.closeReasons }
        #expect(reasons == [.idleTimeout])
    }

    @Test func deadlineClosesTheConnection() throws {
        let harness = try LoopHarness()
        let loop = harness.group.loops[0]
        final class Deadlined: ConnectionHandler, @unchecked Sendable {
            var reasons: [CloseReason] = []
            func connectionDidOpen(_ connection: any ByteStream) { connection.setDeadline(milliseconds: 100) }
            func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {}
            func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) { reasons.append(reason) }
        }
        let handler = Deadlined()
        let port = try harness.onLoop(loop) {
            Int(try Listener(address: try SocketAddress(parsing: "127.0.0.1:0"), on: loop) { _ in handler }.address.port)
        }
        let client = try BlockingSocket(port: port)
        #expect(client.waitForClose())
        #expect(try harness.onLoop(loop) { handler.reasons } == [.deadline])
    }

    @Test(arguments: modes)
    func outgoingConnectionFromTheReactor(mode: TriggerMode) throws {
        var configuration = LoopConfiguration()
        configuration.trigger = mode
        let harness = try LoopHarness(threads: 2, configuration: configuration)
        let port = try startEcho(harness, handler: EchoForTests())
        final class Pinger: ConnectionHandler, @unchecked Sendable {
            let done = ResultBox<[UInt8]>()
            var received: [UInt8] = []
            func connectionDidOpen(_ connection: any ByteStream) { connection.write(Array("ping".utf8)) }
            func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
                received += bytes
                if received.count >= 4 { connection.close() }
            }
            func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) {
                if reason == .local { done.set(.success(received)) } else {
                    done.set(.failure(BlockingSocket.Failure(description: "closed: \(reason)")))
                }
            }
        }
        let pinger = Pinger()
        let loop = harness.group.loops[1]
        _ = try harness.onLoop(loop) {
            _ = try Connection.connect(to: try SocketAddress(parsing: "127.0.0.1:\(port)"), on: loop, handler: pinger)
        }
        #expect(try pinger.done.wait().get() == Array("ping".utf8))

        let refused = Pinger()
        _ = try harness.onLoop(loop) {
            // Port 1 on loopback: nothing listens there.
            _ = try Connection.connect(to: try SocketAddress(parsing: "127.0.0.1:1"), on: loop, handler: refused)
        }
        #expect(throws: BlockingSocket.Failure.self) { try refused.done.wait().get() }
    }

    @Test func connectionsOverTheLimitAreClosedAndCounted() throws {
        let harness = try LoopHarness(maxConnections: 3)
        let handler = EchoForTests()
        let port = try startEcho(harness, handler: handler)
        var clients: [BlockingSocket] = []
        for _ in 0..<3 {
            let client = try BlockingSocket(port: port)
            try client.send("a")
            _ = try client.receive(exactly: 1)
            clients.append(client)
        }
        let extra = try BlockingSocket(port: port)
        #expect(extra.waitForClose())
        let loop = harness.group.loops[0]
        #expect(loop.counters.rejectedOverLimit.load(ordering: .relaxed) == 1)
        clients[0].close()
        #expect(waitUntil { harness.group.connectionCount == 2 })
        let again = try BlockingSocket(port: port)
        try again.send("b")
        #expect(try again.receive(exactly: 1) == [UInt8(ascii: "b")])
    }
}

@Suite struct AdmissionTests {
    /// Echoes; a read of "ok" first marks the connection opened.
    final class Opener: ConnectionHandler, @unchecked Sendable {
        // `@unchecked Sendable`: touched only on the loop (read through `onLoop`).
        var opened = 0
        func connectionDidOpen(_ connection: any ByteStream) { opened += 1 }
        func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
            if Array(bytes) == Array("ok".utf8) { connection.finishedOpening() }
            if Array(bytes) == Array("wait".utf8) { connection.openingWaitsOnPeer(false) }  // "the store has it"
            connection.write(bytes)
        }
    }

    /// An admitting listener with `handler` on loop 0 of `harness`; returns its port.
    static func listen(_ harness: LoopHarness, _ handler: Opener) throws -> Int {
        let loop = harness.group.loops[0]
        return try harness.onLoop(loop) {
            let listener = try Listener(address: try SocketAddress(parsing: "127.0.0.1:0"), on: loop, admitting: true) { _ in handler }
            return Int(listener.address.port)
        }
    }

    /// At `maxOpeningConnections` an admitting listener leaves new connections in the backlog;
    /// a connection that finishes opening, or one that closes before it did, lets the next in.
    @Test(arguments: ConnectionTests.modes)
    func listenerWaitsWhileTheLoopHoldsTooManyOpeningConnections(mode: TriggerMode) throws {
        var configuration = LoopConfiguration()
        configuration.trigger = mode
        configuration.maxOpeningConnections = 2
        configuration.openingGraceUnderPressureMilliseconds = 600_000  // b stays, however slow the run
        let harness = try LoopHarness(configuration: configuration)
        let loop = harness.group.loops[0]
        let handler = Opener()
        let port = try AdmissionTests.listen(harness, handler)
        let opened = { (try? harness.onLoop(loop) { handler.opened }) ?? -1 }
        let pauses = { loop.counters.admissionPauses.load(ordering: .relaxed) }
        let a = try BlockingSocket(port: port)
        let b = try BlockingSocket(port: port)
        #expect(waitUntil { opened() == 2 && pauses() >= 1 })
        // The kernel completes c's connect and queues its bytes; the node must not take it.
        let c = try BlockingSocket(port: port)
        try c.send("ok")
        sleepMilliseconds(100)
        #expect(opened() == 2)
        #expect(try harness.onLoop(loop) { loop.openingConnections } == 2)

        try a.send("ok")
        #expect(try a.receive(exactly: 2) == Array("ok".utf8))
        #expect(try c.receive(exactly: 2) == Array("ok".utf8))  // admitted, and opened at once
        #expect(opened() == 3)

        // b (still opening) and d fill the loop again; e waits until b closes.
        let d = try BlockingSocket(port: port)
        #expect(waitUntil { opened() == 4 && (try? harness.onLoop(loop) { loop.openingConnections }) == 2 })
        let e = try BlockingSocket(port: port)
        try e.send("ok")
        sleepMilliseconds(100)
        #expect(opened() == 4)
        b.close()
        #expect(try e.receive(exactly: 2) == Array("ok".utf8))
        #expect(try harness.onLoop(loop) { loop.openingConnections } == 1)  // d
        _ = d
    }

    /// While new connections wait, ones that stall in their opening past the grace are closed:
    /// silent peers cannot hold every slot until their handshake deadline.
    @Test func stalledOpenersAreClosedWhileOthersWait() throws {
        var configuration = LoopConfiguration()
        configuration.maxOpeningConnections = 2
        configuration.openingGraceUnderPressureMilliseconds = 1_000
        let harness = try LoopHarness(configuration: configuration)
        let loop = harness.group.loops[0]
        let handler = Opener()
        let port = try AdmissionTests.listen(harness, handler)
        let start = sb_monotonic_ns()  // before `silent` is accepted: its grace cannot end earlier
        let silent = try BlockingSocket(port: port)
        let busy = try BlockingSocket(port: port)  // opening, but waiting on the node: never closed for it
        try busy.send("wait")
        #expect(try busy.receive(exactly: 4) == Array("wait".utf8))
        #expect(waitUntil { (try? harness.onLoop(loop) { handler.opened }) == 2 })
        let waiting = try BlockingSocket(port: port)
        try waiting.send("ok")
        #expect(try waiting.receive(exactly: 2) == Array("ok".utf8))  // admitted once the stalled one went
        #expect(sb_monotonic_ns() - start >= 1_000_000_000, "not before the grace")
        #expect(silent.waitForClose())
        // The same pass found `busy` past the grace too, and left it.
        #expect(loop.counters.openingEvictions.load(ordering: .relaxed) == 1)
        #expect(try harness.onLoop(loop) { loop.openingConnections } == 1)  // busy
        try busy.send("ok")
        #expect(try busy.receive(exactly: 2) == Array("ok".utf8))
    }

    /// A listener that does not admit counts nothing.
    @Test func plainListenerIgnoresTheLimit() throws {
        var configuration = LoopConfiguration()
        configuration.maxOpeningConnections = 1
        let harness = try LoopHarness(configuration: configuration)
        let port = try startEcho(harness, handler: EchoForTests())
        let clients = try (0..<3).map { _ in try BlockingSocket(port: port) }
        for client in clients {
            try client.send("x")
            #expect(try client.receive(exactly: 1) == [UInt8(ascii: "x")])
        }
        let loop = harness.group.loops[0]
        #expect(try harness.onLoop(loop) { loop.openingConnections } == 0)
    }
}

/// Runs `body` on a detached thread.
func runThreadsDetached(_ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, Unmanaged.passRetained(Box(body)).toOpaque())
    pthread_detach(thread)
}

@Suite struct ClosingTests {
    /// A peer that keeps sending while we close must still get everything we queued: the close
    /// shuts down our side and drains its input instead of resetting the connection.
    @Test(arguments: ConnectionTests.modes)
    func closeAfterFlushDeliversTheLastBytesToAPeerThatKeepsTalking(mode: TriggerMode) throws {
        var configuration = LoopConfiguration()
        configuration.trigger = mode
        let harness = try LoopHarness(configuration: configuration)
        let loop = harness.group.loops[0]
        final class Farewell: ConnectionHandler, @unchecked Sendable {
            let last = [UInt8](repeating: 0x42, count: 200_000)
            var reasons: [CloseReason] = []
            func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
                connection.write(last)
                connection.closeWhenFlushed(.local)
            }
            func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) { reasons.append(reason) }
        }
        let handler = Farewell()
        let port = try harness.onLoop(loop) {
            Int(try Listener(address: try SocketAddress(parsing: "127.0.0.1:0"), on: loop) { _ in handler }.address.port)
        }
        // A small receive buffer keeps most of the reply in the node's send queue at close time.
        let client = try BlockingSocket(port: port, receiveBufferBytes: 4096)
        try client.send("bye?")
        // Keep talking while the node closes; our unread bytes must not reset the connection.
        for _ in 0..<20 { try? client.send(Array(repeating: 0x01, count: 1000)) }
        let received = try client.receive(exactly: 200_000)
        #expect(received == handler.last)
        #expect(client.waitForClose())
        client.close()
        #expect(waitUntil { (try? harness.onLoop(loop) { handler.reasons }) == [.local] })
    }
}

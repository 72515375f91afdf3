import CSwitchboardShims
import Foundation
import Reactor
import SwitchboardClient
import Testing
import TestSupport
import Wire

@Suite(.serialized) struct NodeServingTests {
    @Test func fiveThousandConcurrentConnectionsAreHeldAndAnswered() throws {
        _ = sb_raise_nofile_limit()
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let count = 5_000
        let clients = try harness.connectMany(count: count, port: node.port) { index in
            Hello(mode: .register, accountName: "user\(index)")
        }
        #expect(clients.welcomed == count, "errors: \(clients.errors.prefix(3))")
        // Every connection is still open: a ping on each comes back.
        #expect(clients.pingAll(value: 42, timeout: 60) == count)
        #expect(node.isRunning)
    }

    @Test func runningOutOfDescriptorsLeavesTheNodeServing() throws {
        // A node allowed 48 descriptors (some go to its store and loops); offered 120 clients.
        let node = try NodeProcess.serve(["--threads", "1"], shellPrefix: "ulimit -n 48;")
        var clients: [BlockingSocket] = []
        for _ in 0..<120 {
            if let client = try? BlockingSocket(port: node.port, receiveTimeoutMilliseconds: 150) { clients.append(client) }
        }
        var answered = 0
        for client in clients where NodeServingTests.answersHandshake(client) { answered += 1 }
        #expect(answered > 0, "connections within the limit are served")
        #expect(answered < clients.count, "some connections could not be held")
        #expect(waitUntil { node.standardError.contains("accept paused: out of descriptors") })
        #expect(node.isRunning)
        for client in clients { client.close() }
        clients.removeAll()
        var served = false
        _ = waitUntil(timeoutMilliseconds: 10_000) {
            guard let client = try? BlockingSocket(port: node.port, receiveTimeoutMilliseconds: 500) else { return false }
            served = NodeServingTests.answersHandshake(client)
            return served
        }
        #expect(served, "the node serves again once descriptors are free")
    }

    /// Sends a preface and an XX first message; true if a handshake frame comes back.
    static func answersHandshake(_ socket: BlockingSocket) -> Bool {
        var start = WireLimits.preface
        start += [0x01, 0x00, 0x20] + [UInt8](repeating: 9, count: 32)  // XX message 1: an ephemeral key
        guard (try? socket.send(start)) != nil, let header = try? socket.receive(exactly: 3) else { return false }
        return header[0] == 0x01
    }

    @Test func sigtermSendsGoodbyeDrainsAndExitsZero() throws {
        let node = try NodeProcess.serve(["--drain-seconds", "5"])
        let harness = try ClientHarness()
        let client = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                         hello: Hello(mode: .register, accountName: "frank"))
        #expect(client.welcome != nil)
        let started = sb_monotonic_ns()
        node.signal(SIGTERM)
        let goodbye = client.recorder.waitFor(timeout: 10) { event in
            if case .stanza(.goodbye) = event { return true }
            return false
        }
        guard case .stanza(.goodbye(let farewell))? = goodbye else {
            Issue.record("no goodbye")
            return
        }
        #expect(farewell.code == .draining)
        #expect(client.waitClosed() != nil)
        #expect(node.waitForExit(timeoutMilliseconds: 10_000) == 0)
        let seconds = Double(sb_monotonic_ns() - started) / 1e9
        #expect(seconds < 5, "the client closes on goodbye, so the drain ends early (took \(seconds) s)")
        #expect(node.standardError.contains("msg=draining signal=SIGTERM"))
        #expect(throws: (any Error).self) { try BlockingSocket(port: node.port) }
    }

    @Test func sigintWithAStuckPeerExitsZeroAtTheEndOfTheGracePeriod() throws {
        let node = try NodeProcess.serve(["--drain-seconds", "1", "--outbound-high-watermark", "65536"])
        // A logged-in client that sends pings and never reads the pongs.
        let stuck = try RawClient(port: node.port, hello: Hello(mode: .register, accountName: "stuck"), receiveBufferBytes: 4096)
        guard case .welcome? = try stuck.handshakeAndAnswer() else {
            Issue.record("no welcome")
            return
        }
        stuck.socket.setNonBlocking()
        let pings = [Stanza](repeating: .ping(1), count: 2000)
        for _ in 0..<100 { _ = try? stuck.sendStanzas(pings) }
        let started = sb_monotonic_ns()
        node.signal(SIGINT)
        #expect(node.waitForExit(timeoutMilliseconds: 10_000) == 0)
        let seconds = Double(sb_monotonic_ns() - started) / 1e9
        #expect(seconds >= 0.9 && seconds < 5, "took \(seconds) s")
        #expect(node.standardError.contains("grace period over"))
    }

    @Test func idleClientsGetGoodbyeAndActiveOnesStay() throws {
        let node = try NodeProcess.serve(["--idle-seconds", "2"])
        let harness = try ClientHarness()
        let idle = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                       hello: Hello(mode: .register, accountName: "idle"))
        let active = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                         hello: Hello(mode: .register, accountName: "active"))
        #expect(idle.welcome?.idleTimeoutSeconds == 2)
        for round in 0..<12 {
            #expect(active.ping(UInt64(round)))
            sleepMilliseconds(300)
        }
        let goodbye = idle.recorder.waitFor(timeout: 8) { event in
            if case .stanza(.goodbye) = event { return true }
            return false
        }
        guard case .stanza(.goodbye(let farewell))? = goodbye else {
            Issue.record("the idle client got no goodbye")
            return
        }
        #expect(farewell.code == .idleTimeout)
        #expect(idle.waitClosed() != nil)
        #expect(!active.isClosed, "a client that pings stays connected past the idle timeout")
    }
}

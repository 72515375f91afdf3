import CSwitchboardShims
import Foundation
import Testing
import TestSupport

@Suite(.serialized) struct NodeServingTests {
    @Test func echoRoundTripThroughTheNode() throws {
        let node = try NodeProcess.serve()
        let client = try BlockingSocket(port: node.port)
        try client.send("hello switchboard")
        #expect(try client.receive(exactly: 17) == Array("hello switchboard".utf8))
        #expect(node.standardError.contains("msg=\"node started\""))
    }

    @Test func fiveThousandConcurrentConnectionsAreHeldAndEchoed() throws {
        _ = sb_raise_nofile_limit()
        let node = try NodeProcess.serve(["--threads", "2"])
        let count = 5_000
        var clients: [BlockingSocket] = []
        clients.reserveCapacity(count)
        for _ in 0..<count {
            clients.append(try BlockingSocket(port: node.port, receiveTimeoutMilliseconds: 10_000))
        }
        for (index, client) in clients.enumerated() { try client.send("c\(index);") }
        var wrong = 0
        for (index, client) in clients.enumerated() {
            let expected = Array("c\(index);".utf8)
            if try client.receive(exactly: expected.count) != expected { wrong += 1 }
        }
        #expect(wrong == 0)
        // All still open: a second round on every connection.
        for client in clients { try client.send("!") }
        for client in clients { #expect(try client.receive(exactly: 1) == [UInt8(ascii: "!")]) }
        #expect(node.process.isRunning)
    }

    @Test func runningOutOfDescriptorsLeavesTheNodeServing() throws {
        // A node allowed 48 descriptors; offered 120 connections.
        let node = try NodeProcess.serve(["--threads", "1"], shellPrefix: "ulimit -n 48;")
        var clients: [BlockingSocket] = []
        for _ in 0..<120 {
            if let client = try? BlockingSocket(port: node.port, receiveTimeoutMilliseconds: 150) { clients.append(client) }
        }
        var echoed = 0
        for client in clients {
            try? client.send("x")
            if (try? client.receive(exactly: 1)) == [UInt8(ascii: "x")] { echoed += 1 }
        }
        #expect(echoed > 0, "connections within the limit are served")
        #expect(echoed < clients.count, "some connections could not be held")
        #expect(waitUntil { node.standardError.contains("accept paused: out of descriptors") })
        #expect(node.process.isRunning)
        // Free the descriptors: the node serves new connections again.
        for client in clients { client.close() }
        clients.removeAll()
        var served = false
        _ = waitUntil(timeoutMilliseconds: 10_000) {
            guard let client = try? BlockingSocket(port: node.port, receiveTimeoutMilliseconds: 500) else { return false }
            try? client.send("back")
            served = (try? client.receive(exactly: 4)) == Array("back".utf8)
            return served
        }
        #expect(served)
        #expect(node.process.isRunning)
    }

    @Test func sigtermDrainsAndExitsZero() throws {
        let node = try NodeProcess.serve(["--drain-seconds", "5"])
        let client = try BlockingSocket(port: node.port)
        try client.send("before")
        _ = try client.receive(exactly: 6)
        let started = sb_monotonic_ns()
        node.signal(SIGTERM)
        #expect(client.waitForClose(), "open connections are closed by the drain")
        #expect(node.waitForExit(timeoutMilliseconds: 10_000) == 0)
        let seconds = Double(sb_monotonic_ns() - started) / 1e9
        #expect(seconds < 5, "an idle node drains well within its grace period")
        #expect(node.standardError.contains("msg=draining signal=SIGTERM"))
        // No longer listening.
        #expect(throws: (any Error).self) { try BlockingSocket(port: node.port) }
    }

    @Test func sigtermWithAStuckPeerExitsZeroAtTheEndOfTheGracePeriod() throws {
        let node = try NodeProcess.serve(["--drain-seconds", "1", "--outbound-high-watermark", "65536"])
        let stuck = try BlockingSocket(port: node.port, receiveBufferBytes: 4096)
        stuck.setNonBlocking()
        for _ in 0..<50 {  // never reads: its echo cannot be flushed
            _ = stuck.sendUntilFull()
            sleepMilliseconds(10)
        }
        let started = sb_monotonic_ns()
        node.signal(SIGINT)
        #expect(node.waitForExit(timeoutMilliseconds: 10_000) == 0)
        let seconds = Double(sb_monotonic_ns() - started) / 1e9
        #expect(seconds >= 0.9 && seconds < 5, "took \(seconds) s")
        #expect(node.standardError.contains("grace period over"))
    }
}

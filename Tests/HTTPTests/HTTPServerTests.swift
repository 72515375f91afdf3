import Foundation
import HTTP
import Reactor
import Testing
import TestSupport

/// Echoes a stream's bytes back (each read as one write, so one chunk) and closes when the
/// client ends its upload.
final class StreamEcho: ConnectionHandler, @unchecked Sendable {
    // `@unchecked Sendable`: created and used on its loop only.
    func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) { connection.write(bytes) }
}

/// An HTTP server on a real loop and real sockets, with short deadlines.
final class HTTPServerFixture {
    let harness: LoopHarness
    let port: Int
    let metrics = HTTPMetrics()

    init(headerMilliseconds: Int = 600, bodyMilliseconds: Int = 600) throws {
        harness = try LoopHarness()
        var routes = HTTPRoutes()
        routes.add("/hello", .respond(methods: ["GET"]) { _ in .text(200, "hi") })
        routes.add("/echo", .respond(methods: ["POST"], maxBodyBytes: 1 << 20) { request in
            HTTPResponse(status: 200, body: request.body)
        })
        routes.add("/stream", .stream(contentType: "application/x-test") { _, _ in .accept(StreamEcho()) })
        var configuration = HTTPServerConnection.Configuration()
        configuration.headerTimeoutMilliseconds = headerMilliseconds
        configuration.bodyTimeoutMilliseconds = bodyMilliseconds
        let loop = harness.group.loops[0]
        let metrics = self.metrics
        let frozen = routes, settings = configuration
        port = try harness.onLoop(loop) {
            let listener = try Listener(address: try SocketAddress(parsing: "127.0.0.1:0"), on: loop) { _ in
                HTTPServerConnection(routes: frozen, configuration: settings, metrics: metrics)
            }
            return Int(listener.address.port)
        }
    }

    func connect() throws -> BlockingSocket { try BlockingSocket(port: port, receiveTimeoutMilliseconds: 5_000) }
}

@Suite(.serialized) struct HTTPServerTests {
    @Test func keepAliveAndPipelinedRequestsAreAnsweredInOrder() throws {
        let server = try HTTPServerFixture()
        let socket = try server.connect()
        try socket.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            + "HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let text = String(decoding: socket.receiveUntilClose() ?? [], as: UTF8.self)
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
        #expect(statuses == ["200", "200", "200", "200"], "\(text)")
        #expect(text.contains("Content-Length: 3\r\n\r\nhi\n"))
        #expect(text.contains("Content-Length: 5\r\n\r\nhello"))
        #expect(text.components(separatedBy: "hi\n").count == 3, "HEAD has no body: \(text)")
        #expect(text.hasSuffix("Connection: close\r\n\r\nhi\n"))
    }

    @Test func malformedRequestsGetTheirStatusAndACloseWhileOthersAreServed() throws {
        let server = try HTTPServerFixture()
        let shapes: [(String, String)] = [
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "400"),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"),
            ("GET /hello HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", "400"),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "400"),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", "501"),
            ("GET /hello HTTP/3.0\r\nHost: a\r\n\r\n", "505"),
            ("GET /hello HTTP/1.1\r\n" + String(repeating: "X-Filler: 0123456789\r\n", count: 900), "431"),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", "413"),
            ("GET /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", "404"),
            ("DELETE /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", "405"),
            ("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", "405"),
            ("POST /stream HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "411"),
            ("POST /stream HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n", "415"),
            ("GET /hello HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", "417"),
        ]
        for (request, status) in shapes {
            let socket = try server.connect()
            try socket.send(request)
            let text = String(decoding: socket.receiveUntilClose() ?? [], as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 \(status) "), "\(request.prefix(60)) → \(text)")
            #expect(text.contains("Connection: close\r\n"), "\(text)")
            let healthy = try server.connect()
            try healthy.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try healthy.receive(through: "hi\n").hasPrefix("HTTP/1.1 200 OK"))
        }
    }

    @Test func aRefusedRequestWithoutBodyKeepsTheConnection() throws {
        let server = try HTTPServerFixture()
        let socket = try server.connect()
        try socket.send("GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        let text = try socket.receive(through: "hi\n")
        #expect(text.hasPrefix("HTTP/1.1 404 Not Found"))
        #expect(text.contains("HTTP/1.1 200 OK"))
    }

    @Test func slowHeadersAreCutWith408AndIdleKeepAliveClosesQuietly() throws {
        let server = try HTTPServerFixture()
        let slow = try server.connect()
        try slow.send("GET /hello HTTP/1.1\r\nHo")
        let started = Date()
        let text = String(decoding: slow.receiveUntilClose() ?? [], as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 408 Request Timeout"), "\(text)")
        #expect(Date().timeIntervalSince(started) < 4)
        // A drip-fed head is cut at the same deadline: each byte does not extend it.
        let drip = try server.connect()
        var sawClose = false
        for byte in "GET /hello HTTP/1.1\r\nHost: a\r\nX-Slow: a".utf8 {
            do { try drip.send([byte]) } catch { sawClose = true; break }
            sleepMilliseconds(50)
        }
        let rest = String(decoding: drip.receiveUntilClose() ?? [], as: UTF8.self)
        #expect(sawClose || rest.hasPrefix("HTTP/1.1 408"), "\(rest)")
        let idle = try server.connect()
        try idle.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        _ = try idle.receive(through: "hi\n")
        #expect(idle.receiveUntilClose() == [], "an idle keep-alive connection is closed without a response")
        #expect(server.metrics.value(.headerTimeouts) >= 1)
    }

    @Test func slowBodiesAreCutWith408() throws {
        let server = try HTTPServerFixture()
        let socket = try server.connect()
        try socket.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        let text = String(decoding: socket.receiveUntilClose() ?? [], as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 408 Request Timeout"), "\(text)")
        let chunked = try server.connect()
        try chunked.send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        let second = String(decoding: chunked.receiveUntilClose() ?? [], as: UTF8.self)
        #expect(second.hasPrefix("HTTP/1.1 408 Request Timeout"), "\(second)")
        #expect(server.metrics.value(.bodyTimeouts) == 2)
    }

    @Test func aMalformedChunkInsideAStreamClosesItWithoutAnHTTPStatusAndTellsTheProtocol() throws {
        let server = try HTTPServerFixture()
        let socket = try server.connect()
        try socket.send("POST /stream HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-test\r\nTransfer-Encoding: chunked\r\n\r\n")
        _ = try socket.receive(through: "\r\n\r\n")
        try socket.send("2\r\nhi\r\nzz\r\n")
        let rest = String(decoding: socket.receiveUntilClose() ?? [], as: UTF8.self)
        #expect(!rest.contains("HTTP/1.1"), "no status inside a stream: \(rest)")
        #expect(waitUntil { server.metrics.value(.streamsClosed) == 1 }, "the protocol above heard the close")
    }

    @Test func aClientFINEndsTheStreamWithTheLastChunk() throws {
        let server = try HTTPServerFixture()
        let socket = try server.connect()
        try socket.send("POST /stream HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-test; charset=binary\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        _ = try socket.receive(through: "abc\r\n")
        socket.shutdownWrite()
        let rest = String(decoding: socket.receiveUntilClose() ?? [], as: UTF8.self)
        #expect(rest.hasSuffix("0\r\n\r\n"), "\(rest)")
    }

    @Test func expectContinueGetsAnInterimResponse() throws {
        let server = try HTTPServerFixture()
        let socket = try server.connect()
        try socket.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        #expect(try socket.receive(through: "\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n")
        try socket.send("ping")
        #expect(try socket.receive(through: "ping").contains("HTTP/1.1 200 OK"))
    }

    @Test func aStreamCarriesOneChunkPerWriteBothWaysAndEndsWithTheUpload() throws {
        let server = try HTTPServerFixture()
        let socket = try server.connect()
        try socket.send("POST /stream HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-test\r\nTransfer-Encoding: chunked\r\n\r\n")
        let head = try socket.receive(through: "\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(head.contains("Transfer-Encoding: chunked\r\n"))
        try socket.send("5\r\nhello\r\n")
        #expect(try socket.receive(through: "hello\r\n").hasSuffix("5\r\nhello\r\n"))
        // A chunk split across writes is one read each side: the echo comes back as it arrived.
        try socket.send("b\r\nhello ")
        sleepMilliseconds(50)
        try socket.send("world\r\n0\r\n\r\n")
        let rest = String(decoding: socket.receiveUntilClose() ?? [], as: UTF8.self)
        #expect(rest.replacingOccurrences(of: "6\r\nhello \r\n5\r\nworld\r\n", with: "X")
            .replacingOccurrences(of: "b\r\nhello world\r\n", with: "X") == "X0\r\n\r\n", "\(rest)")
        #expect(server.metrics.value(.streamsOpened) == 1)
        socket.close()
        #expect(waitUntil { server.metrics.value(.streamsClosed) == 1 })
    }
}

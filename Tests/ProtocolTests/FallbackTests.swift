import Foundation
import Handshake
import SwitchboardClient
import TLS
import Testing
import TestSupport
import Wire

/// A node with the native port, plain HTTP and HTTPS (a certificate the test made with openssl).
final class FallbackNode {
    let certificate: TestCertificate
    let node: NodeProcess
    let httpPort: Int
    let httpsPort: Int

    init(_ extra: [String] = []) throws {
        certificate = try TestCertificate()
        node = try NodeProcess.serve([
            "--threads", "2", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0",
            "--tls-cert", certificate.certificateFile, "--tls-key", certificate.keyFile,
        ] + extra)
        guard let http = node.port(of: "http"), let https = node.port(of: "https") else {
            throw BlockingSocket.Failure(description: "no HTTP ports in the log: \(node.standardError)")
        }
        httpPort = http
        httpsPort = https
    }

    func clientContext() throws -> TLSContext { try TLSContext(clientTrusting: certificate.certificateFile) }
}

let interopDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Interop")

@Suite(.serialized) struct FallbackTests {
    @Test func curlReadsTheOperationsEndpointsOverHTTPAndHTTPS() throws {
        let fixture = try FallbackNode()
        let http = "http://127.0.0.1:\(fixture.httpPort)"
        let https = "https://localhost:\(fixture.httpsPort)"
        let tls = ["--cacert", fixture.certificate.certificateFile]
        for (base, extra) in [(http, [String]()), (https, tls)] {
            let (status, body) = try runTool("/usr/bin/curl", ["-sS", "--fail"] + extra + ["\(base)/healthz"])
            #expect(status == 0 && body == "ok\n", "\(base): \(body)")
            let (readyStatus, ready) = try runTool("/usr/bin/curl", ["-sS", "--fail"] + extra + ["\(base)/readyz"])
            #expect(readyStatus == 0 && ready == "ready\n")
            let (_, metrics) = try runTool("/usr/bin/curl", ["-sS", "--fail"] + extra + ["\(base)/metrics"])
            #expect(metrics.contains("# TYPE switchboard_connections gauge"))
            #expect(metrics.contains("switchboard_loop_iteration_seconds_bucket{le=\"+Inf\"}"))
            #expect(metrics.contains("switchboard_offline_queue_messages 0"))
            let (_, edge) = try runTool("/usr/bin/curl", ["-sS", "--fail"] + extra + ["\(base)/v1/edge"])
            #expect(edge.contains("\"native\":[\"127.0.0.1:\(fixture.node.port)\"]"), "\(edge)")
            #expect(edge.contains("\"https\":[\"https://127.0.0.1:\(fixture.httpsPort)/v1/stream\"]"), "\(edge)")
        }
        let (status, text) = try runTool("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "\(http)/nothing"])
        #expect(status == 0 && text == "404")
        let (_, metrics) = try runTool("/usr/bin/curl", ["-sS", "\(http)/metrics"])
        #expect(metrics.contains("switchboard_tls_handshakes_total{outcome=\"ok\"} 4"), "\(metrics)")
        #expect(metrics.contains("switchboard_http_requests_total{status=\"4xx\"} 1"))
    }

    /// Every metric family PROTOCOL.md section 25 names is exported, with its HELP and TYPE.
    @Test func everyDocumentedMetricFamilyIsExported() throws {
        let fixture = try FallbackNode()
        let document = try String(contentsOf: interopDirectory.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        let section = try #require(document.components(separatedBy: "## 25. Operations endpoints").last)
        let names = Set(section.split(whereSeparator: { !($0.isLetter || $0 == "_") }).filter { $0.hasPrefix("switchboard_") }.map(String.init))
        #expect(names.count >= 20, "\(names)")
        let (_, metrics) = try runTool("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(fixture.httpPort)/metrics"])
        for name in names.sorted() {
            #expect(metrics.contains("# TYPE \(name) "), "\(name) is documented but not exported")
            #expect(metrics.contains("# HELP \(name) "), "\(name) has no HELP line")
        }
    }

    /// curl uploads the preface and an XX first message as a chunked body from stdin and gets the
    /// node's XX second message back as one chunk; its end of upload ends the stream.
    @Test func curlStreamsAChunkedUploadFromStdin() throws {
        let fixture = try FallbackNode()
        let ephemeral = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let upload = WireLimits.preface + [HandshakeFrameType.xx, 0, 32] + ephemeral
        for (url, extra) in [("http://127.0.0.1:\(fixture.httpPort)/v1/stream", [String]()),
                             ("https://localhost:\(fixture.httpsPort)/v1/stream", ["--cacert", fixture.certificate.certificateFile])] {
            let output = NSTemporaryDirectory() + "curl-\(UUID().uuidString)"
            let (status, text) = try runTool("/usr/bin/curl", [
                "-sS", "--fail", "-X", "POST", "-H", "Content-Type: application/x-switchboard", "-H", "Transfer-Encoding: chunked",
                "--data-binary", "@-", "-o", output,
            ] + extra + [url], input: upload)
            #expect(status == 0, "\(url): \(text)")
            let body = [UInt8](FileManager.default.contents(atPath: output) ?? Data())
            #expect(body.first == HandshakeFrameType.xx, "\(url): \(body.prefix(8))")
            if body.count >= 3 {
                #expect(Int(body[1]) << 8 | Int(body[2]) == body.count - 3, "exactly one handshake frame came back")
            }
        }
    }

    @Test(arguments: ["http", "https"])
    func pythonHTTPClientStreamsChunkedBothWays(_ transport: String) throws {
        let fixture = try FallbackNode()
        let port = transport == "http" ? fixture.httpPort : fixture.httpsPort
        let extra = transport == "http" ? ["--http"] : ["--https", fixture.certificate.certificateFile]
        let (status, text) = try runTool("/usr/bin/env", [
            "python3", interopDirectory.appendingPathComponent("python_client.py").path, "127.0.0.1", "\(port)", "py-\(transport)",
        ] + extra)
        #expect(status == 0, "\(text)")
        #expect(text.hasSuffix("OK\n"), "\(text)")
        #expect(text.contains("transport: \(transport)"))
        #expect(text.contains("IK: welcome in one round trip"))
    }

    /// One device on each transport; every conversation of the fallback devices shares their
    /// one HTTP exchange.
    @Test func swiftClientsOnEveryTransportTalkToEachOther() throws {
        let fixture = try FallbackNode()
        let harness = try ClientHarness()
        let context = try fixture.clientContext()
        let native = try harness.connect(port: fixture.node.port, credentials: ClientCredentials(),
                                         hello: Hello(mode: .register, accountName: "native"))
        let plain = try harness.connect(port: fixture.httpPort, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "plain"), transport: .http(host: "127.0.0.1"))
        let secure = try harness.connect(port: fixture.httpsPort, credentials: ClientCredentials(),
                                         hello: Hello(mode: .register, accountName: "secure"),
                                         transport: .https(serverName: "localhost", context: context))
        #expect(plain.welcome != nil && secure.welcome != nil, "plain \(String(describing: plain.error)) secure \(String(describing: secure.error))")
        let everyone = [native, plain, secure]
        for sender in everyone {
            for recipient in everyone where recipient !== sender {
                for index in 0..<20 {
                    sender.send(.send(SendMessage(messageID: randomID(), toAccount: recipient.accountID,
                                                  copies: [MessageCopy(deviceID: recipient.deviceID, ciphertext: Array("\(index)".utf8))])))
                }
            }
        }
        for client in everyone {
            let received = client.waitForDeliveries(40)
            #expect(received.count == 40)
            for sender in everyone where sender !== client {
                let texts = received.filter { $0.fromAccount == sender.accountID }.map { String(decoding: $0.ciphertext, as: UTF8.self) }
                #expect(texts == (0..<20).map(String.init), "order kept from \(sender.accountID)")
            }
            #expect(client.ping(99))
        }
        // A returning fallback device resumes over IK in one round trip through the HTTP exchange.
        let credentials = secure.credentials
        secure.close()
        _ = secure.waitClosed()
        let again = try harness.connect(port: fixture.httpsPort, credentials: credentials, hello: Hello(mode: .resume),
                                        transport: .https(serverName: "localhost", context: context))
        #expect(again.welcome?.deviceID == credentials.deviceID)
        #expect(again.pattern == .ik && again.roundTrips == 1)
        #expect(again.ping(7))
    }

    @Test func aSilentStreamIsCutByTheHandshakeDeadline() throws {
        let fixture = try FallbackNode(["--handshake-seconds", "1"])
        let socket = try BlockingSocket(port: fixture.httpPort)
        try socket.send("POST /v1/stream HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-switchboard\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nSWBD\u{01}\r\n")
        let started = Date()
        let text = String(decoding: socket.receiveUntilClose() ?? [], as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test func aTLSClientThatStopsMidHandshakeIsCut() throws {
        let fixture = try FallbackNode(["--http-header-seconds", "1"])
        // A real ClientHello, made by Python's ssl module on memory BIOs.
        let (status, hex) = try runTool("/usr/bin/env", ["python3", "-c", """
            import ssl
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
            s = ctx.wrap_bio(i, o, server_hostname="localhost")
            try: s.do_handshake()
            except ssl.SSLWantReadError: pass
            print(o.read().hex())
            """])
        #expect(status == 0)
        let hello = stride(from: 0, to: hex.count - 1, by: 2).compactMap { offset -> UInt8? in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)
        }
        let socket = try BlockingSocket(port: fixture.httpsPort)
        try socket.send(hello)
        let answer = try socket.receiveSome()
        #expect(answer.first == 0x16, "the node answered with a TLS handshake record")
        let started = Date()
        #expect(socket.waitForClose(), "the node closes a TLS handshake that stalls")
        #expect(Date().timeIntervalSince(started) < 5)
        // Half a ClientHello: the record never completes.
        let half = try BlockingSocket(port: fixture.httpsPort)
        try half.send(Array(hello.prefix(hello.count / 2)))
        #expect(half.waitForClose())
        let (curlStatus, body) = try runTool("/usr/bin/curl", ["-sS", "--cacert", fixture.certificate.certificateFile,
                                                               "https://localhost:\(fixture.httpsPort)/healthz"])
        #expect(curlStatus == 0 && body == "ok\n")
        let (_, metrics) = try runTool("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(fixture.httpPort)/metrics"])
        #expect(metrics.contains("switchboard_tls_handshakes_total{outcome=\"failed\"} 2"), "both stalled handshakes count")
    }

    @Test func plainHTTPOnTheTLSPortGetsNoHTTPAnswer() throws {
        let fixture = try FallbackNode()
        let socket = try BlockingSocket(port: fixture.httpsPort)
        try socket.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let bytes = socket.receiveUntilClose()
        #expect(bytes != nil, "the node closes the connection")
        let text = String(decoding: bytes ?? [], as: UTF8.self)
        #expect(!text.contains("HTTP/"), "\(text)")
        #expect(bytes?.isEmpty == true || bytes?.first == 0x15, "nothing or a TLS alert record")
        let (_, metrics) = try runTool("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(fixture.httpPort)/metrics"])
        #expect(metrics.contains("switchboard_tls_handshakes_total{outcome=\"failed\"} 1"), "\(metrics)")
    }

    /// A TLS client pipelines requests and never reads: the answers pile up past the outbound
    /// limit and the node closes that connection, and only that one.
    @Test func aTLSClientThatNeverReadsIsCutAtTheOutboundLimit() throws {
        let fixture = try FallbackNode(["--outbound-high-watermark", "65536", "--outbound-limit", "1048576"])
        let (status, text) = try runTool("/usr/bin/env", ["python3", "-c", """
            import socket, ssl, sys, time
            ctx = ssl.create_default_context(cafile=sys.argv[1])
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[2]))), server_hostname="localhost")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            request = b"GET /metrics HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n" * 100
            sent = 0
            try:
                for _ in range(2000):
                    s.sendall(request); sent += 1
                print("never cut", sent)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
                print("cut after", sent, type(e).__name__)
            """, fixture.certificate.certificateFile, "\(fixture.httpsPort)"])
        #expect(status == 0, "\(text)")
        #expect(text.hasPrefix("cut after"), "\(text)")
        let (curlStatus, body) = try runTool("/usr/bin/curl", ["-sS", "--cacert", fixture.certificate.certificateFile,
                                                               "https://localhost:\(fixture.httpsPort)/healthz"])
        #expect(curlStatus == 0 && body == "ok\n")
    }

    /// The offline-queue gauge and the message counters follow what happens: three messages for
    /// an offline device wait, are delivered and acknowledged, and their receipts wait in turn.
    @Test func metricsFollowTheOfflineQueue() throws {
        let fixture = try FallbackNode()
        func metric(_ name: String) throws -> Int? {
            let (_, text) = try runTool("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(fixture.httpPort)/metrics"])
            return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Int($0.split(separator: " ").last ?? "") }
        }
        let harness = try ClientHarness()
        let bob = try harness.registerOffline(port: fixture.node.port, name: "bob")
        let alice = try harness.connect(port: fixture.httpPort, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "alice"), transport: .http(host: "127.0.0.1"))
        for index in 0..<3 {
            let result = alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [UInt8(index)])])
            #expect(result?.code == .ok)
        }
        #expect(try metric("switchboard_offline_queue_messages") == 3)
        #expect(try metric("switchboard_messages_accepted_total") == 3)
        let back = try harness.connect(port: fixture.node.port, credentials: bob.credentials, hello: Hello(mode: .resume))
        let received = back.waitForDeliveries(3)
        #expect(received.count == 3)
        back.send(.ack(seqs: received.map(\.seq)))
        // Each acknowledgement queues a delivery receipt for Alice's device.
        let receipts = alice.waitForDeliveries(3)
        #expect(receipts.allSatisfy { $0.kind == .delivered })
        #expect(waitUntil { (try? metric("switchboard_offline_queue_messages")) == 3 })
        alice.send(.ack(seqs: receipts.map(\.seq)))
        #expect(waitUntil { (try? metric("switchboard_offline_queue_messages")) == 0 })
        #expect(try metric("switchboard_deliveries_total") == 6)
        #expect(try (metric("switchboard_store_batches_total") ?? 0) > 0)
        // Both connected now: the next messages go directly, and never reach the queue.
        for index in 0..<2 { alice.send(.send(SendMessage(messageID: randomID(), toAccount: bob.accountID,
                                                           copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [UInt8(index)])]))) }
        let direct = back.waitForDeliveries(5)
        #expect(direct.count == 5)
        back.send(.ack(seqs: direct.suffix(2).map(\.seq)))
        #expect(waitUntil { (try? metric("switchboard_direct_copies_total{outcome=\"delivered\"}")) == 2 })
        // The 2nd and 3rd offline messages went the direct way too (the 1st taught Alice's session
        // Bob's device), found Bob offline at his registry loop and were stored there.
        #expect(try metric("switchboard_direct_copies_total{outcome=\"stored\"}") == 2)
        #expect(try metric("switchboard_offline_queue_messages") == 0)
        #expect(try metric("switchboard_messages_accepted_total") == 5)
    }

    @Test func sighupReloadsTheCertificate() throws {
        let fixture = try FallbackNode()
        let other = try TestCertificate(commonName: "renewed")
        let url = "https://localhost:\(fixture.httpsPort)/healthz"
        let (before, _) = try runTool("/usr/bin/curl", ["-sS", "--cacert", other.certificateFile, url])
        #expect(before != 0, "the new certificate is not served yet")
        try FileManager.default.removeItem(atPath: fixture.certificate.certificateFile)
        try FileManager.default.removeItem(atPath: fixture.certificate.keyFile)
        try FileManager.default.copyItem(atPath: other.certificateFile, toPath: fixture.certificate.certificateFile)
        try FileManager.default.copyItem(atPath: other.keyFile, toPath: fixture.certificate.keyFile)
        fixture.node.signal(SIGHUP)
        #expect(waitUntil { fixture.node.standardError.contains("TLS certificate reloaded") })
        let (after, body) = try runTool("/usr/bin/curl", ["-sS", "--cacert", other.certificateFile, url])
        #expect(after == 0 && body == "ok\n", "\(body)")
        // A broken pair keeps the old one.
        try "junk".write(toFile: fixture.certificate.keyFile, atomically: true, encoding: .utf8)
        fixture.node.signal(SIGHUP)
        #expect(waitUntil { fixture.node.standardError.contains("TLS certificate reload failed") })
        let (still, _) = try runTool("/usr/bin/curl", ["-sS", "--cacert", other.certificateFile, url])
        #expect(still == 0)
    }

    @Test func aFallbackSessionHearsTheDrainLikeANativeOne() throws {
        let fixture = try FallbackNode(["--drain-seconds", "5"])
        let harness = try ClientHarness()
        let holder = try harness.connect(port: fixture.httpPort, credentials: ClientCredentials(),
                                         hello: Hello(mode: .register, accountName: "holder"), transport: .http(host: "127.0.0.1"))
        #expect(holder.welcome != nil)
        fixture.node.signal(SIGTERM)
        let goodbye = holder.recorder.waitFor(timeout: 10) { event in
            if case .stanza(.goodbye(let g)) = event { return g.code == .draining }
            return false
        }
        #expect(goodbye != nil, "a fallback session hears the drain like a native one")
        #expect(holder.waitClosed() != nil)
        #expect(fixture.node.waitForExit() == 0)
    }
}

import Foundation
import SwitchboardClient
import Testing
import TestSupport
import Wire

/// Push notifications reach a real HTTP receiver (Python's http.server) for offline devices,
/// with a retry after a failure, and none for devices that are connected.
@Suite(.serialized) struct PushTests {
    public final class Receiver {
        let process: ChildProcess
        private(set) var port = 0

        init(failFirst: Int) throws {
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Interop/push_receiver.py").path
            // Never the test's own stdout or stderr: a child holding them would keep the test
            // runner's pipes open after the test.
            process = try ChildProcess("/usr/bin/env", ["python3", script, "\(failFirst)"], standardError: .discard)
            guard waitUntil({ self.lines.first?.hasPrefix("PORT ") == true }), let port = Int(lines[0].dropFirst(5)) else {
                throw BlockingSocket.Failure(description: "push receiver did not start")
            }
            self.port = port
        }

        /// Complete lines only: one still being written is not a request yet.
        var lines: [String] {
            let text = String(decoding: process.standardOutput, as: UTF8.self)
            guard let end = text.lastIndex(of: "\n") else { return [] }
            return text[..<end].split(separator: "\n").map(String.init)
        }

        var requests: [String] { lines.dropFirst().map { $0 } }

        func stop() { process.terminate() }
    }

    @Test func offlineDevicesArePushedWithRetriesAndOnlineOnesAreNot() throws {
        let receiver = try Receiver(failFirst: 1)
        defer { receiver.stop() }
        let node = try NodeProcess.serve(["--push-url", "http://127.0.0.1:\(receiver.port)/push/v1"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        guard case .result(let registered)? = bob.request(.registerPush(requestID: 1, token: "tok-bob"), id: 1) else {
            Issue.record("no result")
            return
        }
        #expect(registered.code == .ok)
        // Online: delivered directly, no push.
        #expect(alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [1])])?.code == .ok)
        _ = bob.waitForDeliveries(1)
        sleepMilliseconds(500)
        #expect(receiver.requests.isEmpty, "no push for a connected device")

        bob.close()
        _ = bob.waitClosed()
        sleepMilliseconds(100)
        #expect(alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [2])])?.code == .ok)
        #expect(waitUntil(timeoutMilliseconds: 10_000) { receiver.requests.count >= 2 }, "a failed push is retried")
        let requests = receiver.requests
        #expect(requests[0].hasPrefix("500 /push/v1 "))
        #expect(requests[1].hasPrefix("200 /push/v1 "))
        let body = String(requests[1].dropFirst("200 /push/v1 ".count))
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        #expect(json?["token"] as? String == "tok-bob")
        #expect(json?["sender_account"] as? Int == Int(alice.accountID))
        #expect(json?["device"] as? Int == Int(bob.deviceID))
        #expect((json?["waiting"] as? Int ?? 0) >= 1)
        #expect(json?["node"] as? String != nil)
        #expect(!body.contains("\u{2}"), "no message content in a push")
    }

    @Test func badPushURLsAreUsageErrors() throws {
        for url in ["https://127.0.0.1/x", "http:///x", "http://host name/x", "ftp://1.2.3.4/"] {
            let run = try NodeProcess(["serve", "--push-url", url])
            #expect(run.waitForExit() == 2, "\(url)")
            #expect(run.standardError.contains("--push-url"))
        }
    }
}

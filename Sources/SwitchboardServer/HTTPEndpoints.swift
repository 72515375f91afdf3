import Chat
import HTTP
import Reactor
import Synchronization

/// The node's HTTP routes (PROTOCOL.md sections 24–25): the fallback transport and the
/// operations endpoints. The HTTP module knows none of this; the composition root registers it.
struct HTTPEndpoints {
    static let streamContentType = "application/x-switchboard"

    let services: SessionServices
    let sessionMetrics: [SessionMetrics]
    let exposition: MetricsExposition
    let state: NodeState

    func routes() -> HTTPRoutes {
        var routes = HTTPRoutes()
        let services = self.services, sessionMetrics = self.sessionMetrics, state = self.state, exposition = self.exposition
        routes.add("/v1/stream", .stream(contentType: HTTPEndpoints.streamContentType) { _, loop in
            guard !state.isDraining else {
                return .refuse(.text(503, "node draining: connect to another node", headers: [("Retry-After", "1")]))
            }
            return .accept(ServerSession(services: services, metrics: sessionMetrics[loop]))
        })
        routes.add("/healthz", .respond(methods: ["GET"]) { _ in .text(200, "ok") })
        routes.add("/readyz", .respond(methods: ["GET"]) { _ in
            if let reason = state.notReadyReason { return .text(503, reason) }
            return .text(200, "ready")
        })
        routes.add("/metrics", .respond(methods: ["GET"]) { _ in
            HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                         body: Array(exposition.render().utf8))
        })
        routes.add("/v1/edge", .respond(methods: ["GET"]) { _ in
            HTTPResponse(status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                         body: Array(state.edgeDocument().utf8))
        })
        return routes
    }
}

/// What the node's HTTP endpoints need to know about the node, readable from any loop.
final class NodeState: Sendable {
    private let started = Atomic<Bool>(false)
    private let draining = Atomic<Bool>(false)
    /// Written once by `start()` before `started` is set; read only after.
    private let edge = Mutex<String>("{}")

    var isDraining: Bool { draining.load(ordering: .relaxed) }

    var notReadyReason: String? {
        if draining.load(ordering: .relaxed) { return "draining" }
        if !started.load(ordering: .acquiring) { return "starting" }
        return nil
    }

    func markStarted(nodeID: String, native: [SocketAddress], http: [SocketAddress], https: [SocketAddress]) {
        func list(_ items: [String]) -> String { "[" + items.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
        let document = "{\"node\":\"\(nodeID)\",\"native\":\(list(native.map(\.description)))"
            + ",\"http\":\(list(http.map { "http://\($0)/v1/stream" }))"
            + ",\"https\":\(list(https.map { "https://\($0)/v1/stream" }))}"
        edge.withLock { $0 = document }
        started.store(true, ordering: .releasing)
    }

    func markDraining() { draining.store(true, ordering: .relaxed) }

    func edgeDocument() -> String { edge.withLock { $0 } }
}

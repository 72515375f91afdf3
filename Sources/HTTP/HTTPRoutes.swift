import Reactor

/// A request to an ordinary route, body read whole.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
}

/// What a path does, as registered by the composition root.
public enum HTTPRoute: Sendable {
    /// A buffered request answered at once. `GET` routes answer `HEAD` too.
    case respond(methods: [String], maxBodyBytes: Int = 0, handler: @Sendable (HTTPRequest) -> HTTPResponse)
    /// A `POST` with a chunked body that becomes a two-way stream of chunks: `open` (on the
    /// connection's loop) returns the protocol to run over it, or a refusal.
    case stream(contentType: String, open: @Sendable (HTTPRequestHead, EventLoopID) -> StreamDecision)
}

/// Which loop a stream is opened on (the composition root keeps per-loop state).
public typealias EventLoopID = Int

public enum StreamDecision {
    case accept(ConnectionHandler)
    case refuse(HTTPResponse)
}

/// The routes of one HTTP listener, by exact path.
public struct HTTPRoutes: Sendable {
    private var table: [String: HTTPRoute] = [:]

    public init() {}

    public mutating func add(_ path: String, _ route: HTTPRoute) {
        precondition(path.hasPrefix("/"), "routes are paths")
        table[path] = route
    }

    func route(for path: Substring) -> HTTPRoute? { table[String(path)] }
}


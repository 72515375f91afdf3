import Reactor

/// One HTTP/1.1 server connection over a stream (a TCP connection or a `TLSStream`): parses
/// requests, answers ordinary routes, and turns a stream route's request into a two-way chunked
/// stream carrying another protocol. Requests are answered in order (pipelining); slow heads and
/// bodies are cut by deadlines. Loop thread only.
public final class HTTPServerConnection: ConnectionHandler, TimerTarget {
    public struct Configuration: Sendable {
        /// A request head must be complete this long after the connection opened or the previous
        /// response ended; an idle keep-alive connection is closed then.
        public var headerTimeoutMilliseconds = 10_000
        /// A buffered body must be complete this long after its head.
        public var bodyTimeoutMilliseconds = 30_000

        public init() {}
    }

    private enum Phase {
        /// Waiting for (or reading) a request head.
        case idle
        /// Reading the body of a request to an ordinary route.
        case buffering(HTTPRequestHead, @Sendable (HTTPRequest) -> HTTPResponse)
        /// A refused request whose (empty) body is being read before the next request.
        case skipping
        /// The connection carries a stream for `inner`.
        case streaming(ConnectionHandler, ChunkedBodyStream)
        case closing
    }

    private let routes: HTTPRoutes
    private let configuration: Configuration
    private let metrics: HTTPMetrics
    private let overTLS: Bool
    /// True while the node drains: responses close their connection.
    private let isDraining: @Sendable () -> Bool
    private var lower: (any ByteStream)?
    private var parser = HTTPRequestParser()
    private var phase = Phase.idle
    private var body: [UInt8] = []
    private var timer = TimerHandle.none

    /// - Parameters:
    ///   - overTLS: counts the connection as HTTPS (it runs inside a `TLSStream`).
    ///   - isDraining: true once the node drains (any thread).
    public init(routes: HTTPRoutes, configuration: Configuration, metrics: HTTPMetrics, overTLS: Bool = false,
                isDraining: @escaping @Sendable () -> Bool = { false }) {
        self.overTLS = overTLS
        self.routes = routes
        self.configuration = configuration
        self.metrics = metrics
        self.isDraining = isDraining
    }

    public func connectionDidOpen(_ connection: any ByteStream) {
        lower = connection
        metrics.bump(overTLS ? .tlsOpened : .plainOpened)
        armTimer(configuration.headerTimeoutMilliseconds)
    }

    public func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
        var input = bytes
        while lower != nil {
            switch phase {
            case .closing: return
            case .streaming(_, let stream) where stream.ending: return  // nothing follows a stream
            default: break
            }
            let event: HTTPRequestParser.Event?
            do {
                event = try parser.next(&input)
            } catch {
                if case .streaming = phase {
                    // The response is a stream already: no status can be sent. Close; the
                    // session hears it through connectionDidClose.
                    connection.close(.local)
                } else {
                    refuse(HTTPResponse.text(error.status, error.reason), close: true)
                }
                return
            }
            guard let event else { return }
            switch event {
            case .head(let head, let framing):
                begin(head, framing)
            case .body(let slice):
                switch phase {
                case .buffering: body.append(contentsOf: slice)
                case .streaming(let inner, let stream): inner.connection(stream, didRead: slice)
                default: break
                }
            case .end:
                end()
            }
        }
    }

    // MARK: Requests

    private func begin(_ head: HTTPRequestHead, _ framing: HTTPRequestHead.Framing) {
        cancelTimer()
        let hasBody: Bool
        switch framing {
        case .none, .length(0): hasBody = false
        default: hasBody = true
        }
        let expectation = head.header("expect")
        if let expectation, expectation.lowercased() != "100-continue" {
            refuse(.text(417, "only the 100-continue expectation is supported"), close: true)
            return
        }
        guard let route = routes.route(for: head.path) else {
            refuse(.text(404, "no such path: \(head.path)"), close: hasBody || !head.keepAlive)
            return
        }
        switch route {
        case .respond(let methods, let maxBodyBytes, let handler):
            let allowed = methods.contains(head.method) || (head.method == "HEAD" && methods.contains("GET"))
            guard allowed else {
                refuse(.text(405, "\(head.method) is not allowed here", headers: [("Allow", methods.joined(separator: ", "))]),
                       close: hasBody || !head.keepAlive)
                return
            }
            if case .length(let n) = framing, n > maxBodyBytes {
                refuse(.text(413, "body over \(maxBodyBytes) bytes"), close: true)
                return
            }
            if framing == .chunked && maxBodyBytes == 0 {
                refuse(.text(413, "this path takes no body"), close: true)
                return
            }
            parser.maxBodyBytes = maxBodyBytes
            phase = .buffering(head, handler)
            if hasBody {
                if head.expectsContinue { write(HTTPResponse.continueHead) }
                armTimer(configuration.bodyTimeoutMilliseconds)
            }
        case .stream(let contentType, let open):
            guard head.method == "POST" else {
                refuse(.text(405, "a stream is opened with POST", headers: [("Allow", "POST")]), close: true)
                return
            }
            guard framing == .chunked else {
                refuse(.text(411, "a stream needs Transfer-Encoding: chunked"), close: true)
                return
            }
            let mediaType = head.header("content-type")?.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() }
            guard mediaType == contentType else {
                refuse(.text(415, "a stream's Content-Type is \(contentType)"), close: true)
                return
            }
            guard let lower else { return }
            switch open(head, lower.loop.id) {
            case .refuse(let response):
                refuse(response, close: true)
            case .accept(let inner):
                if head.expectsContinue { write(HTTPResponse.continueHead) }
                write(Array("HTTP/1.1 200 OK\r\nContent-Type: \(contentType)\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n".utf8))
                metrics.countStatus(200)
                metrics.bump(.streamsOpened)
                parser.maxBodyBytes = .max
                let stream = ChunkedBodyStream(owner: self, lower: lower)
                phase = .streaming(inner, stream)
                inner.connectionDidOpen(stream)
            }
        }
    }

    private func end() {
        switch phase {
        case .buffering(let head, let handler):
            cancelTimer()
            let request = HTTPRequest(head: head, body: body)
            body = []
            let response = handler(request)
            let keepAlive = head.keepAlive && !isDraining()
            metrics.countStatus(response.status)
            write(response.encoded(keepAlive: keepAlive, headOnly: head.method == "HEAD"))
            if keepAlive {
                phase = .idle
                armTimer(configuration.headerTimeoutMilliseconds)
            } else {
                phase = .closing
                lower?.closeWhenFlushed(.local)
            }
        case .skipping:
            phase = .idle
            armTimer(configuration.headerTimeoutMilliseconds)
        case .streaming(_, let stream):
            // The client ended its upload: like a native half-close, the session ends.
            stream.closeWhenFlushed(.peerClosed)
        case .idle, .closing:
            break
        }
    }

    /// Answers with an error; closes unless the request's framing is known and it asked to stay.
    private func refuse(_ response: HTTPResponse, close: Bool) {
        metrics.countStatus(response.status)
        let keepAlive = !close && !isDraining()
        write(response.encoded(keepAlive: keepAlive))
        if keepAlive {
            phase = .skipping
        } else {
            phase = .closing
            cancelTimer()
            lower?.closeWhenFlushed(.local)
        }
    }

    private func write(_ bytes: [UInt8]) { lower?.write(bytes) }

    // MARK: Deadlines

    private func armTimer(_ milliseconds: Int) {
        guard let lower else { return }
        lower.loop.cancelTimer(timer)
        timer = lower.loop.scheduleTimer(in: milliseconds, target: self, tag: 0)
    }

    private func cancelTimer() {
        lower?.loop.cancelTimer(timer)
        timer = .none
    }

    public func timerFired(tag: Int) {
        timer = .none
        switch phase {
        case .idle where parser.isIdle:
            lower?.close(.idleTimeout)  // an idle keep-alive connection: nothing to answer
        case .idle:
            metrics.bump(.headerTimeouts)
            refuse(.text(408, "request head not complete within \(configuration.headerTimeoutMilliseconds / 1000) s"), close: true)
        case .buffering:
            metrics.bump(.bodyTimeouts)
            refuse(.text(408, "request body not complete within \(configuration.bodyTimeoutMilliseconds / 1000) s"), close: true)
        case .skipping, .streaming, .closing:
            break
        }
    }

    // MARK: Events from the stream beneath

    public func connectionWillFlush(_ connection: any ByteStream) {
        guard case .streaming(let inner, let stream) = phase else { return }
        inner.connectionWillFlush(stream)
        // Ending, whoever started it: the session, or the peer's FIN beneath.
        if stream.ending || !connection.isOpen { stream.finish() }
    }

    public func connectionShouldDrain(_ connection: any ByteStream) {
        switch phase {
        case .streaming(let inner, let stream):
            inner.connectionShouldDrain(stream)
        case .idle where parser.isIdle:
            phase = .closing
            connection.closeWhenFlushed(.draining)
        default:
            break  // the response in progress closes the connection (isDraining)
        }
    }

    public func connectionIdleTimedOut(_ connection: any ByteStream) {
        if case .streaming(let inner, let stream) = phase {
            inner.connectionIdleTimedOut(stream)
        } else {
            connection.close(.idleTimeout)
        }
    }

    public func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) {
        cancelTimer()
        metrics.bump(overTLS ? .tlsClosed : .plainClosed)
        if case .streaming(let inner, let stream) = phase {
            metrics.bump(.streamsClosed)
            inner.connectionDidClose(stream, reason: reason)
        }
        phase = .closing
        body = []
        lower = nil
    }
}

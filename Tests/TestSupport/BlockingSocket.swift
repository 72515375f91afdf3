import CSwitchboardShims
import Glibc

/// A plain blocking TCP client for tests: the peer of the node, written without the Reactor so
/// a Reactor bug cannot hide itself on both ends.
public final class BlockingSocket {
    public private(set) var fd: Int32

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Connects to `host:port` (IPv4).
    /// - Parameter receiveBufferBytes: a small SO_RCVBUF makes a peer that stops reading stall
    ///   the sender quickly.
    public init(host: String = "127.0.0.1", port: Int, receiveTimeoutMilliseconds: Int = 5000,
                receiveBufferBytes: Int? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        if let receiveBufferBytes {
            _ = sb_set_int_option(fd, SOL_SOCKET, SO_RCVBUF, Int32(receiveBufferBytes))
        }
        var address = [UInt8](repeating: 0, count: 4)
        guard sb_parse_ipv4(host, &address) == 0 else { throw Failure(description: "bad host \(host)") }
        guard sb_connect(fd, AF_INET, address, UInt16(port)) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw Failure(description: "connect: errno \(code)")
        }
        setReceiveTimeout(milliseconds: receiveTimeoutMilliseconds)
    }

    deinit { close() }

    public func setReceiveTimeout(milliseconds: Int) {
        var timeout = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "send: errno \(errno)")
            }
            offset += n
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads exactly `count` bytes, or throws on EOF or timeout.
    public func receive(exactly count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < count {
            let want = min(buffer.count, count - result.count)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, want, 0) }
            if n > 0 {
                result.append(contentsOf: buffer[0..<n])
            } else if n == 0 {
                throw Failure(description: "EOF after \(result.count) of \(count) bytes")
            } else if errno == EINTR {
                continue
            } else {
                throw Failure(description: "recv: errno \(errno) after \(result.count) of \(count) bytes")
            }
        }
        return result
    }

    /// What one `recv` returns: bytes, `[]` on EOF; throws on timeout or error.
    public func receiveSome(max: Int = 65536) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
            if n >= 0 { return Array(buffer[0..<n]) }
            if errno == EINTR { continue }
            throw Failure(description: "recv: errno \(errno)")
        }
    }

    /// Waits for the peer to close: true on EOF (or reset), false on timeout.
    public func waitForClose() -> Bool {
        while true {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) }
            if n == 0 { return true }
            if n > 0 { continue }
            if errno == EINTR { continue }
            return errno == ECONNRESET
        }
    }

    /// Reads until the peer closes; nil if the receive timeout passes first.
    public func receiveUntilClose() -> [UInt8]? {
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
            if n == 0 { return all }
            if n > 0 {
                all += buffer[0..<n]
                continue
            }
            if errno == EINTR { continue }
            return errno == ECONNRESET ? all : nil
        }
    }

    /// Reads until `marker` has arrived (or throws on EOF/timeout); returns everything read.
    public func receive(through marker: String) throws -> String {
        var all: [UInt8] = []
        while !String(decoding: all, as: UTF8.self).contains(marker) {
            let some = try receiveSome()
            guard !some.isEmpty else { throw Failure(description: "closed before '\(marker)': \(String(decoding: all, as: UTF8.self))") }
            all += some
        }
        return String(decoding: all, as: UTF8.self)
    }

    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Makes sends non-blocking (for filling the peer's buffers).
    public func setNonBlocking() {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// Sends until the kernel refuses more; returns the bytes accepted. Needs `setNonBlocking()`.
    public func sendUntilFull(chunk: Int = 65536) -> Int {
        let bytes = [UInt8](repeating: 0x61, count: chunk)
        var total = 0
        while true {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, chunk, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                total += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            return total
        }
    }

    public func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }
}

/// Sleeps the calling thread.
public func sleepMilliseconds(_ ms: Int) {
    usleep(UInt32(ms) * 1000)
}

/// Polls `condition` every 10 ms until it holds or `timeoutMilliseconds` pass.
public func waitUntil(timeoutMilliseconds: Int = 10_000, _ condition: () -> Bool) -> Bool {
    let deadline = sb_monotonic_ns() + UInt64(timeoutMilliseconds) * 1_000_000
    while sb_monotonic_ns() < deadline {
        if condition() { return true }
        sleepMilliseconds(10)
    }
    return condition()
}

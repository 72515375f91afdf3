internal import COpenSSL
import Synchronization

/// Why TLS could not be set up or a TLS connection failed, with OpenSSL's own words.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ context: String) {
        description = "\(context): \(TLSError.drainQueue())"
    }

    /// Empties OpenSSL's thread-local error queue into one line (it must be emptied after every
    /// failure, or the next call on this thread would see a stale error).
    static func drainQueue() -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            reasons.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return reasons.isEmpty ? "no detail from OpenSSL" : reasons.joined(separator: "; ")
    }
}

/// An OpenSSL context (certificate, key, protocol versions, ciphers, ALPN) shared by every loop.
/// A server context can be reloaded from its files: connections made after the reload use the
/// new certificate, open ones keep the old (each SSL object holds a reference to its context).
public final class TLSContext: Sendable {
    public enum Role: Sendable { case server, client }

    public let role: Role
    private let certificateFile: String?
    private let keyFile: String?
    private let trustedFile: String?
    /// The current SSL_CTX as a bit pattern (pointers are not Sendable); swapped under the lock,
    /// which is taken once per new TLS connection, never per message.
    private let current: Mutex<UInt>

    /// A server context from PEM files (the certificate file may hold the whole chain).
    /// - Throws: `TLSError` naming the file OpenSSL could not use.
    public init(certificateFile: String, keyFile: String) throws(TLSError) {
        role = .server
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        trustedFile = nil
        let ctx = try TLSContext.makeServerContext(certificateFile: certificateFile, keyFile: keyFile)
        _ = TLSError.drainQueue()
        current = Mutex(UInt(bitPattern: Int(bitPattern: UnsafeMutableRawPointer(ctx))))
    }

    /// A client context that verifies the server against the CA certificates in `trustedFile`
    /// (PEM), or against the system's store when nil.
    public init(clientTrusting trustedFile: String?) throws(TLSError) {
        role = .client
        certificateFile = nil
        keyFile = nil
        self.trustedFile = trustedFile
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TLSError("SSL_CTX_new") }
        guard sb_tls_ctx_restrict(ctx) == 1, sb_tls_ctx_offer_alpn(ctx) == 1 else {
            SSL_CTX_free(ctx)
            throw TLSError("TLS client settings")
        }
        let loaded = trustedFile.map { SSL_CTX_load_verify_locations(ctx, $0, nil) } ?? SSL_CTX_set_default_verify_paths(ctx)
        guard loaded == 1 else {
            SSL_CTX_free(ctx)
            throw TLSError("cannot load trusted certificates '\(trustedFile ?? "system")'")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        current = Mutex(UInt(bitPattern: Int(bitPattern: UnsafeMutableRawPointer(ctx))))
    }

    deinit {
        current.withLock { bits in SSL_CTX_free(OpaquePointer(bitPattern: bits)) }
    }

    /// Reads the certificate and key files again; on failure the old pair stays in use.
    public func reload() throws(TLSError) {
        guard role == .server, let certificateFile, let keyFile else { return }
        let fresh = try TLSContext.makeServerContext(certificateFile: certificateFile, keyFile: keyFile)
        let old = current.withLock { bits in
            let old = bits
            bits = UInt(bitPattern: Int(bitPattern: UnsafeMutableRawPointer(fresh)))
            return old
        }
        SSL_CTX_free(OpaquePointer(bitPattern: old))
        _ = TLSError.drainQueue()  // decoders may leave notes behind even on success
    }

    /// A new SSL object on the current context (it holds its own reference to the context).
    func makeSession() -> OpaquePointer? {
        current.withLock { bits in SSL_new(OpaquePointer(bitPattern: bits)) }
    }

    private static func makeServerContext(certificateFile: String, keyFile: String) throws(TLSError) -> OpaquePointer {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TLSError("SSL_CTX_new") }
        guard sb_tls_ctx_restrict(ctx) == 1 else {
            SSL_CTX_free(ctx)
            throw TLSError("TLS server settings")
        }
        sb_tls_ctx_serve_alpn(ctx)
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateFile) == 1 else {
            SSL_CTX_free(ctx)
            throw TLSError("cannot use certificate file '\(certificateFile)'")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, keyFile, SSL_FILETYPE_PEM) == 1 else {
            SSL_CTX_free(ctx)
            throw TLSError("cannot use key file '\(keyFile)'")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            SSL_CTX_free(ctx)
            throw TLSError("key file '\(keyFile)' does not match certificate '\(certificateFile)'")
        }
        return ctx
    }
}

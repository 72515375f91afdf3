internal import COpenSSL
internal import CSodium

/// The C libraries the node links, initialised once at start.
enum CryptoLibraries {
    /// Initialises libsodium (required before any use; safe to call twice).
    /// - Returns: false if libsodium could not initialise (no entropy source).
    static func initialise() -> Bool {
        sodium_init() >= 0
    }

    static var versions: String {
        let sodium = String(cString: sodium_version_string())
        let openssl = String(cString: OpenSSL_version(0))
        return "libsodium \(sodium), \(openssl)"
    }
}

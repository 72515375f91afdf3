import Foundation
import Handshake
import Noise

/// The files of a node's data directory (docs/STORAGE.md): its Noise static key, the previous
/// one after a rotation, the resumption-token key, the node id and the SQLite database.
struct DataDirectory {
    let path: String

    var serverKeyPath: String { path + "/server.key" }
    var previousServerKeyPath: String { path + "/server.key.previous" }
    var tokenKeyPath: String { path + "/token.key" }
    var rootKeyPath: String { path + "/root.key" }
    var nodeIDPath: String { path + "/node-id" }
    var databasePath: String { path + "/switchboard.db" }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The server's static key pair, created on first use.
    func serverKey() throws -> KeyPair {
        KeyPair(privateKey: try secret(at: serverKeyPath, create: true))
    }

    /// Moves the current key aside (`server.key.previous`) and writes a new one. The running
    /// node picks it up on SIGHUP; clients that cached the old key fall back to XXfallback once.
    func rotateServerKey() throws -> KeyPair {
        let manager = FileManager.default
        if manager.fileExists(atPath: serverKeyPath) {
            try? manager.removeItem(atPath: previousServerKeyPath)
            try manager.moveItem(atPath: serverKeyPath, toPath: previousServerKeyPath)
        }
        return try serverKey()
    }

    /// The operator root's Ed25519 seed, created on first use. It signs the server key.
    func rootSeed() throws -> SecretBytes {
        try secret(at: rootKeyPath, create: true)
    }

    /// The server key pair and a certificate for it signed by the root, issued now.
    func serverIdentity() throws -> (key: KeyPair, certificate: ServerCertificate) {
        let key = try serverKey()
        let certificate = ServerCertificate.issue(
            serverKey: key.publicKey, rootSeed: try rootSeed(), issuedAt: UInt64(Date().timeIntervalSince1970))
        return (key, certificate)
    }

    func tokenKey() throws -> SecretBytes {
        try secret(at: tokenKeyPath, create: true)
    }

    func nodeID() throws -> String {
        if let text = try? String(contentsOfFile: nodeIDPath, encoding: .utf8) {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty { return trimmed }
        }
        let id = "node-" + encodeHex(SecretBytes.random(count: 4).array)
        try write(Data((id + "\n").utf8), to: nodeIDPath, mode: 0o644)
        return id
    }

    /// A 32-byte secret file (mode 0600), created with fresh random bytes when missing.
    private func secret(at file: String, create: Bool) throws -> SecretBytes {
        if let data = FileManager.default.contents(atPath: file) {
            guard data.count == 32 else { throw Failure(description: "\(file) is not a 32-byte key") }
            return SecretBytes(Array(data))
        }
        guard create else { throw Failure(description: "\(file) does not exist") }
        let secret = SecretBytes.random(count: 32)
        try write(Data(secret.array), to: file, mode: 0o600)
        return secret
    }

    /// Writes through a temporary file and a rename, so a crash never leaves half a key.
    private func write(_ data: Data, to file: String, mode: Int) throws {
        let temporary = file + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: mode]) else {
            throw Failure(description: "cannot write \(temporary)")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, file) == 0 else { throw Failure(description: "cannot rename \(temporary) to \(file)") }
    }
}

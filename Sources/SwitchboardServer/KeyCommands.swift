import Flags
import Foundation
import Handshake
import Noise
import Store

/// `switchboard keygen`, `pubkey` and `invite`: offline tools over a data directory.
enum KeyCommands {
    static let dataSpecs = [
        FlagSpec("data", value: "DIR", help: "data directory (default ./switchboard-data)"),
        FlagSpec("help", help: "print this help"),
    ]

    static func dataDirectory(_ arguments: [String], command: String, summary: String, extra: [FlagSpec] = [])
        -> Result<(DataDirectory, ParsedFlags), ExitStatus>
    {
        let specs = extra + dataSpecs
        let usage = usageText(command: "switchboard \(command) [flags]", summary: summary, specs: specs)
        if arguments.contains("--help") {
            print(usage, terminator: "")
            return .failure(ExitStatus(code: 0))
        }
        do {
            let flags = try ParsedFlags(arguments, specs: specs)
            return .success((DataDirectory(path: flags.value("data") ?? "./switchboard-data"), flags))
        } catch {
            return .failure(ExitStatus(code: SwitchboardCommand.usageFailure(error.description, usage: usage)))
        }
    }

    static func keygen(_ arguments: [String]) -> Int32 {
        let parsed = dataDirectory(
            arguments, command: "keygen",
            summary: "Rotates the node's Noise static key: the current key becomes server.key.previous and a new\nkey is written. Send SIGHUP to a running node to start using it. Prints the new public key.")
        guard case .success(let (directory, _)) = parsed else { return parsed.exitCode }
        do {
            try makeDirectory(directory.path)
            _ = try directory.rootSeed()  // the root that will vouch for the new key
            let key = try directory.rotateServerKey()
            print(encodeHex(key.publicKey))
            return 0
        } catch {
            writeStandardError("switchboard: \(error)\n")
            return 1
        }
    }

    static func pubkey(_ arguments: [String]) -> Int32 {
        let parsed = dataDirectory(
            arguments, command: "pubkey",
            summary: "Prints the node's current Noise static public key (hex), or with --root the operator root key\n(Ed25519, hex) that signs it: the key applications pin.",
            extra: [FlagSpec("root", help: "print the root key instead")])
        guard case .success(let (directory, flags)) = parsed else { return parsed.exitCode }
        if flags.isSet("root") {
            guard FileManager.default.fileExists(atPath: directory.rootKeyPath) else {
                writeStandardError("switchboard: no root key in '\(directory.path)': start the node once or run 'switchboard keygen'\n")
                return 1
            }
            do {
                print(encodeHex(ServerCertificate.rootPublicKey(seed: try directory.rootSeed())))
                return 0
            } catch {
                writeStandardError("switchboard: \(error)\n")
                return 1
            }
        }
        guard FileManager.default.fileExists(atPath: directory.serverKeyPath) else {
            writeStandardError("switchboard: no server key in '\(directory.path)': start the node once or run 'switchboard keygen'\n")
            return 1
        }
        do {
            print(encodeHex(try directory.serverKey().publicKey))
            return 0
        } catch {
            writeStandardError("switchboard: \(error)\n")
            return 1
        }
    }

    static func invite(_ arguments: [String]) -> Int32 {
        let parsed = dataDirectory(
            arguments, command: "invite",
            summary: "Mints invite codes for '--registration invite', one per line. Safe beside a running node.",
            extra: [FlagSpec("count", value: "N", help: "how many codes (default 1)")])
        guard case .success(let (directory, flags)) = parsed else { return parsed.exitCode }
        do {
            let count = try flags.integer("count", default: 1, range: 1...10_000)
            try makeDirectory(directory.path)
            let database = try SQLiteDatabase(path: directory.databasePath)
            try AccountStore.migrate(database)
            let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")
            for _ in 0..<count {
                let code = SecretBytes.random(count: 12).array.map { String(alphabet[Int($0) % alphabet.count]) }.joined()
                try AccountStore.createInvite(database, code: code, now: Int64(Date().timeIntervalSince1970))
                print(code)
            }
            return 0
        } catch let error as UsageError {
            return SwitchboardCommand.usageFailure(error.description, usage: "")
        } catch {
            writeStandardError("switchboard: \(error)\n")
            return 1
        }
    }

    static func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
}

/// `switchboard check-vectors FILE`.
enum VectorCommand {
    static func run(_ arguments: [String]) -> Int32 {
        let usage = """
            usage: switchboard check-vectors FILE

            Runs every entry of a cacophony/snow-format Noise test-vector file whose protocol this build
            supports (25519, ChaChaPoly, SHA256 or BLAKE2b; XX, IK, XXfallback) and prints one line per
            entry, then 'N passed, M failed'. Exit status 1 if any failed.

            """
        if arguments.contains("--help") {
            print(usage, terminator: "")
            return 0
        }
        guard arguments.count == 1, !arguments[0].hasPrefix("--") else {
            return SwitchboardCommand.usageFailure(arguments.isEmpty ? "missing FILE" : "expected one FILE", usage: usage)
        }
        struct File: Decodable { let vectors: [NoiseVector] }
        let vectors: [NoiseVector]
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: arguments[0]))
            vectors = try JSONDecoder().decode(File.self, from: data).vectors
        } catch {
            writeStandardError("switchboard: cannot read vectors from '\(arguments[0])': \(error)\n")
            return 1
        }
        _ = CryptoLibraries.initialise()
        var passed = 0, failed = 0, skipped = 0
        for (index, vector) in vectors.enumerated() {
            switch VectorRunner.run(vector) {
            case .passed:
                passed += 1
                print("ok      #\(index) \(vector.protocol_name)")
            case .failed(let why):
                failed += 1
                print("FAILED  #\(index) \(vector.protocol_name): \(why)")
            case .unsupported:
                skipped += 1
                print("skipped #\(index) \(vector.protocol_name) (not supported by this build)")
            }
        }
        print("\(passed) passed, \(failed) failed" + (skipped > 0 ? ", \(skipped) skipped" : ""))
        return failed > 0 ? 1 : 0
    }
}

/// An early exit of a command (help printed, or a usage error) with its status.
struct ExitStatus: Error {
    let code: Int32
}

extension Result where Failure == ExitStatus {
    var exitCode: Int32 {
        if case .failure(let status) = self { return status.code }
        return 0
    }
}

import Glibc
import Flags
import Reactor

/// The `switchboard` command line: subcommands, `--help`, `--version`, exit statuses
/// (0 success, 1 runtime failure, 2 usage error).
public enum SwitchboardCommand {
    public static let version = "0.1.0"

    static let overview = """
        usage: switchboard <command> [flags]

        Switchboard is a chat edge node: clients connect over an encrypted binary protocol.

        commands:
          serve          run a node (see 'switchboard serve --help')
          keygen         rotate the node's Noise static key (--data DIR)
          pubkey         print the node's Noise static public key (--data DIR)
          invite         mint invite codes for --registration invite (--data DIR --count N)
          check-vectors  run a Noise test-vector file against this build (FILE)

        flags:
          --help      print this help
          --version   print the version and the linked C libraries

        """

    /// Runs the command line and returns the process exit status.
    public static func main(_ arguments: [String]) -> Int32 {
        guard let command = arguments.first else {
            return usageFailure("missing command", usage: overview)
        }
        let rest = Array(arguments.dropFirst())
        switch command {
        case "--help", "-h", "help":
            print(overview, terminator: "")
            return 0
        case "--version":
            _ = CryptoLibraries.initialise()
            print("switchboard \(version) (\(CryptoLibraries.versions))")
            return 0
        case "serve":
            return serve(rest)
        case "keygen":
            return KeyCommands.keygen(rest)
        case "pubkey":
            return KeyCommands.pubkey(rest)
        case "invite":
            return KeyCommands.invite(rest)
        case "check-vectors":
            return VectorCommand.run(rest)
        default:
            return usageFailure("unknown command '\(command)'", usage: overview)
        }
    }

    static func serve(_ arguments: [String]) -> Int32 {
        let usage = usageText(command: "switchboard serve [flags]", summary: ServeOptions.summary, specs: ServeOptions.specs)
        if arguments.contains("--help") {
            print(usage, terminator: "")
            return 0
        }
        let options: ServeOptions
        do {
            options = try ServeOptions(arguments: arguments)
        } catch {
            return usageFailure(error.description, usage: usage)
        }
        SignalSource.blockSignals()
        do {
            let node = try Node(options: options)
            try node.start()
            print("switchboard listening on \(node.boundAddresses.map(\.description).joined(separator: " "))")
            fflush(nil)
            node.wait()
            return 0
        } catch {
            writeStandardError("switchboard: \(error)\n")
            return 1
        }
    }

    static func usageFailure(_ message: String, usage: String) -> Int32 {
        writeStandardError("switchboard: \(message)\n\n\(usage)")
        return 2
    }
}

/// Writes text to stderr unbuffered.
func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = Glibc.write(2, raw.baseAddress! + offset, raw.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}

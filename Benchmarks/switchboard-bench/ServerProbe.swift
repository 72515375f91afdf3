import Foundation
import Glibc

/// What the benchmark reads about the server process from /proc (and, when the node runs with
/// the malloc counter preloaded, its allocation count).
struct ServerSample {
    var cpuSeconds: Double = 0  // utime + stime
    var readCalls: UInt64 = 0  // /proc/PID/io syscr
    var writeCalls: UInt64 = 0  // /proc/PID/io syscw
    var rssBytes: UInt64 = 0
    var anonymousBytes: UInt64 = 0  // RssAnon: heap and stacks, not mapped files
    var allocations: UInt64?
}

struct ServerProbe {
    let pid: Int32
    let mallocCountFile: String?

    func sample() -> ServerSample {
        var result = ServerSample()
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            // Fields after the command name; utime and stime are fields 14 and 15 (1-based).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            if fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) {
                result.cpuSeconds = (user + system) / ticks
            }
        }
        if let io = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) {
            for line in io.split(separator: "\n") {
                let parts = line.split(separator: ":")
                guard parts.count == 2, let value = UInt64(parts[1].trimmingCharacters(in: .whitespaces)) else { continue }
                if parts[0] == "syscr" { result.readCalls = value }
                if parts[0] == "syscw" { result.writeCalls = value }
            }
        }
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            func kib(_ field: String) -> UInt64? {
                guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return nil }
                return UInt64(line.split(separator: " ").dropFirst().first ?? "")
            }
            result.rssBytes = (kib("VmRSS:") ?? 0) * 1024
            result.anonymousBytes = (kib("RssAnon:") ?? 0) * 1024
        }
        if let file = mallocCountFile {
            try? FileManager.default.removeItem(atPath: file)
            kill(pid, SIGUSR2)
            for _ in 0..<200 {
                if let text = try? String(contentsOfFile: file, encoding: .utf8), text.hasSuffix("\n"),
                    let count = UInt64(text.dropLast())
                {
                    result.allocations = count
                    break
                }
                usleep(5_000)
            }
        }
        return result
    }
}

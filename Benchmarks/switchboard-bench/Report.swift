import Foundation

/// Figures of one run: printed as a table on stdout and, with `--json FILE`, written as JSON.
struct Report {
    let scenario: String
    let label: String
    var figures: [(String, Double)] = []

    mutating func add(_ name: String, _ value: Double) { figures.append((name, value)) }

    /// Adds the server-side figures of a measured window.
    mutating func addServer(before: ServerSample?, after: ServerSample?, operations: Int, unit: String) {
        guard let before, let after, operations > 0 else { return }
        let cpu = after.cpuSeconds - before.cpuSeconds
        add("server_cpu_seconds", cpu)
        if cpu > 0 { add("\(unit)_per_server_cpu_second", Double(operations) / cpu) }
        add("server_read_calls_per_\(unit)", Double(after.readCalls - before.readCalls) / Double(operations))
        add("server_write_calls_per_\(unit)", Double(after.writeCalls - before.writeCalls) / Double(operations))
        add("server_rss_bytes", Double(after.rssBytes))
        if let a = before.allocations, let b = after.allocations {
            add("server_allocations_per_\(unit)", Double(b - a) / Double(operations))
        }
    }

    func print(json path: String?) throws {
        Swift.print("scenario: \(scenario) (\(label))")
        for (name, value) in figures {
            let text = value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.3f", value)
            Swift.print(name.padding(toLength: 40, withPad: " ", startingAt: 0) + text)
        }
        guard let path else { return }
        var object: [String: Any] = ["scenario": scenario, "label": label]
        for (name, value) in figures { object[name] = value }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
    }
}

/// A live progress line on stderr.
func progress(_ scenario: String, _ text: String) {
    FileHandle.standardError.write(Data("\r\u{1B}[K[\(scenario)] \(text)".utf8))
}

/// A command-line flag a command accepts.
public struct FlagSpec: Sendable {
    public let name: String
    /// The value's placeholder in usage text; nil for a switch that takes no value.
    public let valueName: String?
    public let help: String
    public let repeatable: Bool

    public init(_ name: String, value: String? = nil, repeatable: Bool = false, help: String) {
        self.name = name
        self.valueName = value
        self.help = help
        self.repeatable = repeatable
    }
}

/// A command line that did not parse; its description is the one-line message for the user.
public struct UsageError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Flags as given: values in order per flag, and the switches that were set.
public struct ParsedFlags: Sendable {
    public private(set) var values: [String: [String]] = [:]
    public private(set) var switches: Set<String> = []

    /// Parses `--name value`, `--name=value` and `--switch`. Anything else is an error: an
    /// unknown flag, a missing value, a repeated flag that is not repeatable, a bare argument.
    public init(_ arguments: some Sequence<String>, specs: [FlagSpec]) throws(UsageError) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw UsageError("unexpected argument '\(argument)'")
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let spec = specs.first(where: { $0.name == name }) else {
                throw UsageError("unknown flag '--\(name)'")
            }
            if spec.valueName == nil {
                guard inlineValue == nil else { throw UsageError("flag '--\(name)' takes no value") }
                switches.insert(name)
                continue
            }
            guard let value = inlineValue ?? iterator.next(), inlineValue != nil || !value.hasPrefix("--") else {
                throw UsageError("flag '--\(name)' needs a value (\(spec.valueName!))")
            }
            if values[name] != nil && !spec.repeatable {
                throw UsageError("flag '--\(name)' given more than once")
            }
            values[name, default: []].append(value)
        }
    }

    public func value(_ name: String) -> String? { values[name]?.last }
    public func all(_ name: String) -> [String] { values[name] ?? [] }
    public func isSet(_ name: String) -> Bool { switches.contains(name) }

    /// An integer flag within bounds, or `defaultValue` when absent.
    public func integer(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws(UsageError) -> Int {
        guard let text = value(name) else { return defaultValue }
        guard let number = Int(text.filter { $0 != "_" }), range.contains(number) else {
            throw UsageError("flag '--\(name)' needs an integer from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return number
    }
}

/// Usage text for a command: one line per flag, aligned.
public func usageText(command: String, summary: String, specs: [FlagSpec]) -> String {
    var lines = ["usage: \(command)", "", summary, "", "flags:"]
    let heads = specs.map { spec in "  --\(spec.name)" + (spec.valueName.map { " \($0)" } ?? "") }
    let width = (heads.map(\.count).max() ?? 0) + 2
    for (head, spec) in zip(heads, specs) {
        lines.append(head + String(repeating: " ", count: width - head.count) + spec.help)
    }
    return lines.joined(separator: "\n") + "\n"
}

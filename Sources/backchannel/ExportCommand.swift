import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel export`: a device's readings or events over a time range, as CSV or XML.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a device's readings (or events) over a time range as CSV or self-describing XML.",
        discussion: """
            CSV has the columns device,id,kind,name,at,receivedAt and then one column per data \
            value, named by its path (billing_information.kWh_month). XML names every value by \
            its tag: <reading id=… at=…><billing_information><kWh_month>45.54</kWh_month>…

            Times are RFC 3339 (2026-11-27T00:00:00Z) or relative to now: -24h, -7d, -90m. \
            Without --output the export goes to standard output; with it, progress goes to \
            standard error and the file is written whole or not at all.

            Example: backchannel export meter-001 --from -7d --format csv --output meter-001.csv
            """
    )

    @OptionGroup var client: ClientOptions
    @Argument(help: "Device id.") var device: String
    @Option(help: "csv or xml.") var format: ExportFormat = .csv
    @Option(help: "reading, event or all.") var kind: String = "reading"
    // `.unconditional`: a relative time such as -7d starts with a dash and is still a value.
    @Option(
        parsing: .unconditional,
        help: "Start of the range (inclusive): RFC 3339, or relative such as -24h (default -24h).")
    var from: String?
    @Option(parsing: .unconditional, help: "End of the range (exclusive): RFC 3339, or relative (default now).")
    var to: String?
    @Option(help: "Write to this file instead of standard output.") var output: String?

    func validate() throws {
        guard ["reading", "event", "all"].contains(kind) else {
            throw ValidationError("--kind must be reading, event or all")
        }
        for (name, value) in [("--from", from), ("--to", to)] {
            if let value, Self.time(value) == nil {
                throw ValidationError("\(name): not an RFC 3339 time or a relative time like -24h, -7d, -90m")
            }
        }
    }

    /// An RFC 3339 time, or `-<n>(s|m|h|d)` before now.
    static func time(_ text: String) -> Timestamp? {
        if let absolute = Timestamp(rfc3339: text) { return absolute }
        guard text.hasPrefix("-"), let unit = text.last, let amount = Double(text.dropFirst().dropLast()),
            amount >= 0
        else { return nil }
        let seconds: Double
        switch unit {
        case "s": seconds = amount
        case "m": seconds = amount * 60
        case "h": seconds = amount * 3600
        case "d": seconds = amount * 86_400
        default: return nil
        }
        return Timestamp.now().adding(seconds: -seconds)
    }

    func run() async throws {
        let uplinkKind = kind == "all" ? nil : UplinkKind(rawValue: kind)
        let start = from.flatMap(Self.time)
        let end = to.flatMap(Self.time)
        guard let output else {
            try await withClient(client) { client in
                try await client.export(device: device, format: format, kind: uplinkKind, from: start, to: end) {
                    FileHandle.standardOutput.write($0)
                }
            }
            return
        }
        // Written to a temporary file beside the target and renamed at the end: a failed export
        // never leaves a truncated file behind under the requested name.
        let target = URL(fileURLWithPath: output).standardizedFileURL
        let partial = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).partial")
        guard FileManager.default.createFile(atPath: partial.path, contents: nil) else {
            throw CLIError("cannot create \(partial.path)")
        }
        let handle = try FileHandle(forWritingTo: partial)
        var lines = 0
        var lastReport = Date()
        do {
            let bytes = try await withClient(client) { client in
                try await client.export(device: device, format: format, kind: uplinkKind, from: start, to: end) {
                    chunk in
                    try handle.write(contentsOf: chunk)
                    lines += chunk.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                    if Date().timeIntervalSince(lastReport) >= 1 {
                        lastReport = Date()
                        FileHandle.standardError.write(Data("exported \(lines) lines…\n".utf8))
                    }
                }
            }
            try handle.synchronize()
            try handle.close()
            _ = try? FileManager.default.removeItem(at: target)
            try FileManager.default.moveItem(at: partial, to: target)
            let items = format == .csv ? max(0, lines - 1) : max(0, lines - 3)
            FileHandle.standardError.write(
                Data("wrote \(items) \(kind == "all" ? "items" : kind + "s") (\(bytes) bytes) to \(target.path)\n".utf8)
            )
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: partial)
            throw error
        }
    }
}

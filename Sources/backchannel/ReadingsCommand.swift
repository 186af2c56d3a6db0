import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel readings`: a device's stored readings and events.
struct ReadingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readings",
        abstract: "Show a device's stored readings and events, newest first."
    )

    @OptionGroup var client: ClientOptions
    @Argument(help: "Device id.") var device: String
    @Option(help: "reading or event (default both).") var kind: UplinkKind?
    @Option(help: "Most items to show (1-1000).") var limit = 20

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1-1000") }
    }

    func run() async throws {
        let page = try await withClient(client) { try await $0.uplink(device: device, kind: kind, limit: limit) }
        if client.json { return try printJSON(page) }
        printTable(
            ["AT", "KIND", "NAME", "DATA"],
            page.items.map { [$0.at.description, $0.kind.rawValue, $0.name, compact($0.data)] }
        )
    }
}

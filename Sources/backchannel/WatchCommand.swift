import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel watch`: tail hub events.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Tail live hub events: devices appearing, readings, command state changes.",
        discussion: "Runs until Ctrl-C. With --json, prints one JSON event per line."
    )

    @OptionGroup var client: ClientOptions
    @Option(help: "Only this device's events.") var device: String?
    @Option(help: "Stop after this many events (default: run forever).") var count: Int?

    func run() async throws {
        var seen = 0
        try await withClient(client) { api in
            for try await event in api.events(device: device) {
                if client.json {
                    print(String(decoding: try WireJSON.encode(event), as: UTF8.self))
                } else {
                    let parts: [String?] = [
                        event.at.description, event.type.rawValue, event.device, event.command, event.state?.rawValue,
                        event.detail, event.data.map { compact($0) },
                    ]
                    print(parts.compactMap { $0 }.joined(separator: "  "))
                }
                fflush(nil)
                seen += 1
                if let count, seen >= count { break }
            }
        }
    }
}

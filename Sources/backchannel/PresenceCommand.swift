import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel presence`: which devices are there and able to act.
struct PresenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "presence",
        abstract: "Show which devices are there and able to act; ask a device to refresh; watch changes.",
        discussion: """
            The hub infers online, unavailable (a clean goodbye), presence-error (the device \
            missed the time by which it promised to poll, plus the grace) or unknown; the device \
            declares available, available-on, available-off, restricted (with a note) or \
            unavailable. A device is available when it is online and not restricted or unavailable.
            """,
        subcommands: [List.self, Show.self, Refresh.self, Watch.self],
        defaultSubcommand: List.self
    )

    static func declared(_ report: PresenceReport?) -> String {
        guard let report else { return "-" }
        return report.state.rawValue + (report.note.map { " (\($0))" } ?? "")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every device's presence.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Only devices in this inferred state: unknown, online, unavailable, presence-error.")
        var state: InferredPresence?
        @Flag(help: "Only devices available for work now.") var available = false

        func run() async throws {
            let views = try await withClient(client) { api in
                var all: [PresenceView] = []
                var cursor: String?
                repeat {
                    let page = try await api.presence(
                        state: state, available: available ? true : nil, cursor: cursor, limit: 1000)
                    all += page.items
                    cursor = page.nextCursor
                } while cursor != nil
                return all
            }
            if client.json { return try printJSON(views) }
            printTable(
                ["DEVICE", "PRESENCE", "AVAILABLE", "DECLARED", "SINCE", "CONTACT BY"],
                views.map {
                    [
                        $0.device, $0.inferred.rawValue, $0.available ? "yes" : "no",
                        PresenceCommand.declared($0.declared),
                        ago($0.since), $0.contactBy?.description ?? "-",
                    ]
                }
            )
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One device's presence and its history.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Device id.") var device: String
        @Option(help: "History entries to show (1-1000).") var limit = 20

        func validate() throws {
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1-1000") }
        }

        func run() async throws {
            let detail = try await withClient(client) { try await $0.presenceDetail(device, limit: limit) }
            if client.json { return try printJSON(detail) }
            let p = detail.presence
            printTable(
                ["FIELD", "VALUE"],
                [
                    ["device", p.device], ["presence", p.inferred.rawValue], ["available", p.available ? "yes" : "no"],
                    ["declared", PresenceCommand.declared(p.declared)],
                    ["status", p.declared?.status.map { compact(.object($0)) } ?? "-"],
                    ["since", p.since?.description ?? "-"], ["last contact", p.lastContactAt?.description ?? "-"],
                    ["contact by", p.contactBy?.description ?? "-"], ["error at", p.errorAt?.description ?? "-"],
                ]
            )
            print("")
            printTable(
                ["AT", "FROM", "TO", "DECLARED", "REASON"],
                detail.history.map {
                    [$0.at.description, $0.from.rawValue, $0.to.rawValue, $0.declared?.rawValue ?? "-", $0.reason]
                }
            )
        }
    }

    struct Refresh: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask a device to declare its presence in its next poll (a held long-poll is answered now).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Device id.") var device: String

        func run() async throws {
            let view = try await withClient(client) { try await $0.refreshPresence(device) }
            if client.json { return try printJSON(view) }
            print("\(device): refresh requested (now \(view.inferred.rawValue))")
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tail presence changes.", discussion: "Runs until Ctrl-C. With --json, one event per line.")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("device"), help: "Only this device (repeatable).") var devices: [String] = []
        @Option(name: .customLong("state"), help: "Only changes to this state (repeatable).")
        var states: [InferredPresence] = []
        @Option(help: "Stop after this many events.") var count: Int?

        func run() async throws {
            var seen = 0
            try await withClient(client) { api in
                for try await event in api.presenceEvents(devices: devices, states: states) {
                    if client.json {
                        print(String(decoding: try WireJSON.encode(event), as: UTF8.self))
                    } else {
                        let reason = event.data?["reason"]?.stringValue ?? ""
                        let declared = event.data?["declared"]?.stringValue.map { "declared \($0)" } ?? ""
                        print(
                            [event.at.description, event.device ?? "", event.detail ?? "", reason, declared]
                                .filter { !$0.isEmpty }.joined(separator: "  "))
                    }
                    fflush(nil)
                    seen += 1
                    if let count, seen >= count { break }
                }
            }
        }
    }
}

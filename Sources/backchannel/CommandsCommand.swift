import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel commands`: list, show and cancel commands.
struct CommandsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commands",
        abstract: "List, show and cancel commands.",
        subcommands: [List.self, Show.self, Cancel.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List commands, newest first.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Only this device's commands.") var device: String?
        @Option(
            help:
                "Only commands in this state (QUEUED, DISPATCHED, ACKED, SUCCEEDED, FAILED, REJECTED, EXPIRED, CANCELED, TIMED_OUT)."
        )
        var state: String?
        @Option(help: "Most commands to show (1-1000).") var limit = 50

        func validate() throws {
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1-1000") }
            if let state, MessageState(rawValue: state.uppercased()) == nil {
                throw ValidationError("unknown --state \(state)")
            }
        }

        func run() async throws {
            let page = try await withClient(client) {
                try await $0.commands(
                    device: device, state: state.flatMap { MessageState(rawValue: $0.uppercased()) }, limit: limit)
            }
            if client.json { return try printJSON(page) }
            printTable(
                ["ID", "DEVICE", "NAME", "STATE", "ATTEMPT", "CREATED", "OUTCOME"],
                page.items.map {
                    [
                        $0.id, $0.device, $0.name, $0.state.rawValue, "\($0.attempt)/\($0.maxAttempts)",
                        ago($0.createdAt), $0.outcome?.code ?? "",
                    ]
                }
            )
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a command with its history.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Command id.") var id: String

        func run() async throws {
            let view = try await withClient(client) { try await $0.command(id) }
            if client.json { return try printJSON(view) }
            print(
                "\(view.id)  \(view.name) → \(view.device)  \(view.state)  attempt \(view.attempt)/\(view.maxAttempts)")
            print(
                "args: \(compact(view.args))  expires: \(view.expiresAt)"
                    + (view.notBefore.map { "  not before: \($0)" } ?? ""))
            if let outcome = view.outcome {
                print(
                    "outcome: \(outcome.status?.rawValue ?? "-") \(outcome.code ?? "") \(outcome.detail ?? "") \(compact(outcome.data))"
                )
            }
            printTable(
                ["AT", "FROM", "TO", "EVENT", "ATTEMPT", "DETAIL"],
                (view.history ?? []).map {
                    [
                        $0.at.description, $0.from?.rawValue ?? "-", $0.to.rawValue, $0.event, "\($0.attempt)",
                        $0.detail ?? "",
                    ]
                }
            )
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a command that has not ended.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Command id.") var id: String
        @Option(help: "Why, for the history.") var reason: String?

        func run() async throws {
            let view = try await withClient(client) { try await $0.cancel(id, reason: reason) }
            if client.json { return try printJSON(view) }
            print("\(view.id) \(view.state)")
        }
    }
}

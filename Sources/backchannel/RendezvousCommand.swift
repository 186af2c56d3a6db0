import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel rendezvous`: which devices may send which commands to which others.
struct RendezvousCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rendezvous",
        abstract: "Manage the rules that let devices send requests to each other through the hub.",
        discussion: """
            Rendezvous is denied unless a rule allows the pair. A selector is device:<id>, \
            label:<key>=<value> (every device with that label) or * (any device).

            Example: backchannel rendezvous allow --from device:meter-001 --to label:site=b --command read
            """,
        subcommands: [List.self, Allow.self, Delete.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the rendezvous rules.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let rules = try await withClient(client) { try await $0.rendezvousRules() }
            if client.json { return try printJSON(rules) }
            printTable(
                ["RULE", "FROM", "TO", "COMMANDS"],
                rules.map { [$0.id, $0.from, $0.to, $0.commands.joined(separator: ",")] }
            )
        }
    }

    struct Allow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a rule allowing senders to send commands.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Senders: device:<id>, label:<key>=<value> or *.") var from: String
        @Option(help: "Targets: device:<id>, label:<key>=<value> or *.") var to: String
        @Option(name: .customLong("command"), help: "A command name to allow (repeat it; * allows every name).")
        var commands: [String] = []

        func validate() throws {
            if commands.isEmpty { throw ValidationError("give at least one --command (or --command '*')") }
            for selector in [from, to] {
                if let problem = RendezvousRule.problem(selector: selector) {
                    throw ValidationError("\(selector): \(problem)")
                }
            }
        }

        func run() async throws {
            let rule = try await withClient(client) {
                try await $0.addRendezvousRule(CreateRendezvousRule(from: from, to: to, commands: commands))
            }
            if client.json { return try printJSON(rule) }
            print("rule \(rule.id): \(rule.from) may send \(rule.commands.joined(separator: ",")) to \(rule.to)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a rule (requests already queued stay).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Rule id.") var rule: String

        func run() async throws {
            try await withClient(client) { try await $0.deleteRendezvousRule(rule) }
            print("deleted rule \(rule)")
        }
    }
}

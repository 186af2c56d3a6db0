import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel alarms`: rules on status values, alarms, acknowledgement, and an operator session.
struct AlarmsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alarms",
        abstract: "Show and acknowledge alarms, set alarm rules, and be present as an operator.",
        discussion: """
            Rules on device status values (presence status, readings) raise alarms. Each alarm is \
            offered to the first operator on its list who is present (has `alarms watch --operator` \
            or a dashboard open) and escalates to the next after escalateAfter seconds. An alarm \
            is acknowledged once.

            Example rules file (the loading example):
              {"rules": [{"id": "high", "name": "high loading", "valuePath": "load", "comparison": "atLeast",
                          "threshold": 80, "severity": "warning"}, …],
               "escalation": {"defaultList": {"operators": ["alice", "bob"], "escalateAfter": 120}}}
            """,
        subcommands: [List.self, Ack.self, Rules.self, Watch.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open alarms (--all: every alarm kept).")
        @OptionGroup var client: ClientOptions
        @Flag(help: "Include acknowledged and cleared alarms.") var all = false

        func run() async throws {
            let alarms = try await withClient(client) { try await $0.alarms(all: all) }
            if client.json { return try printJSON(alarms) }
            printTable(
                ["ALARM", "DEVICE", "NAME", "SEVERITY", "STATE", "OFFERED TO", "VALUE"],
                alarms.map { a in
                    [
                        a["id"]?.stringValue ?? "", a["device"]?.stringValue ?? "", a["name"]?.stringValue ?? "",
                        a["severity"]?.stringValue ?? "", a["state"]?.stringValue ?? "",
                        a["offeredTo"]?.stringValue ?? "-", a["value"].map { compact($0) } ?? "",
                    ]
                })
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Acknowledge an alarm (only the first ack counts).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Alarm id.") var alarm: String
        @Option(name: .customLong("operator"), help: "Who acknowledges.") var name: String

        func run() async throws {
            let result = try await withClient(client) { try await $0.acknowledgeAlarm(alarm, operator: name) }
            if client.json { return try printJSON(result) }
            print("\(alarm) acknowledged by \(name)")
        }
    }

    struct Rules: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the alarm rules, or replace them from a JSON file (--set).")
        @OptionGroup var client: ClientOptions
        @Option(help: "A JSON file with {rules, escalation} to put in force.") var set: String?

        func run() async throws {
            let result = try await withClient(client) { api -> JSONValue in
                guard let set else { return try await api.alarmConfiguration() }
                let data: Data
                do {
                    data = try Data(contentsOf: URL(fileURLWithPath: set))
                } catch {
                    throw CLIError("cannot read \(set): \(error.localizedDescription)")
                }
                let body: JSONValue
                do {
                    body = try WireJSON.decode(JSONValue.self, from: data)
                } catch {
                    throw CLIError("\(set): \(WireJSON.describe(error))")
                }
                return try await api.setAlarmConfiguration(body)
            }
            try printJSON(result)
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tail alarm changes; with --operator you are present for escalation while it runs.")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("operator"), help: "Your operator name.") var name: String?
        @Option(help: "Stop after this many events.") var count: Int?

        func run() async throws {
            var seen = 0
            try await withClient(client) { api in
                for try await event in api.alarmEvents(operator: name) {
                    if client.json {
                        print(String(decoding: try WireJSON.encode(event), as: UTF8.self))
                    } else {
                        let step = event.data?["step"]
                        let who = step?["operator"]?.stringValue.map { "→ \($0)" } ?? ""
                        print(
                            [
                                event.at.description, event.device ?? "", event.detail ?? "", who,
                                event.data?["alarmID"]?.stringValue ?? "",
                            ]
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

import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel campaign`: one command to many devices, with per-device outcomes.
struct CampaignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Send one command to many devices and follow each device's outcome.",
        discussion: """
            Example: backchannel campaign start upgrade --arg version=2.4.1 --selector label:feeder=7 \
            --per-minute 50 --abort-threshold 0.1 --until-available --ttl 86400
            """,
        subcommands: [Start.self, Status.self, List.self, Cancel.self],
        defaultSubcommand: List.self
    )

    static func summary(_ view: CampaignView) -> String {
        let open = ["QUEUED", "DISPATCHED", "ACKED"].map { view.counts[$0] ?? 0 }.reduce(0, +)
        return "\(view.id) \(view.state.rawValue): \(view.succeeded) succeeded, \(view.failed) failed, "
            + "\(view.counts["CANCELED"] ?? 0) canceled, \(open) open of \(view.devices)"
            + (view.detail.map { " (\($0))" } ?? "")
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a campaign.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Command name.") var command: String
        @Option(name: .customLong("arg"), help: "An argument as key=value; repeatable.") var args: [String] = []
        @Option(name: .customLong("device"), help: "A target device (repeatable).") var devices: [String] = []
        @Option(help: "Target devices by label:<key>=<value>, or * for every device.") var selector: String?
        @Option(help: "Waves: at most this many devices per minute.") var perMinute: Int?
        @Option(help: "Cancel the rest when this share (0-1) of finished devices failed.") var abortThreshold: Double?
        @Option(help: "Finished devices needed before the abort threshold applies (default 1).") var minFinished: Int?
        @Flag(help: "Wait for each device to be available (else queue for it) until the deadline.")
        var untilAvailable = false
        @Option(help: "Seconds until unfinished devices' commands expire.") var ttl: Double?
        @Flag(help: "Wait until the campaign ends, printing progress.") var wait = false

        func validate() throws {
            if devices.isEmpty && selector == nil { throw ValidationError("give --device (repeatable) or --selector") }
        }

        func run() async throws {
            var object: [String: JSONValue] = [:]
            for arg in args {
                let parts = arg.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw ValidationError("--arg must be key=value") }
                object[parts[0]] = Double(parts[1]).map(JSONValue.number) ?? .string(parts[1])
            }
            let request = StartCampaignRequest(
                name: command, args: .object(object), devices: devices.isEmpty ? nil : devices, selector: selector,
                perMinute: perMinute, abortThreshold: abortThreshold, minFinished: minFinished,
                untilAvailable: untilAvailable, ttl: ttl)
            let final = try await withClient(client) { api -> CampaignView in
                var view = try await api.startCampaign(request)
                if !client.json { print(CampaignCommand.summary(view)) }
                var last = ""
                while wait && view.state == .running {
                    try await Task.sleep(for: .seconds(1))  // polling the API for progress output
                    view = try await api.campaign(view.id)
                    let line = CampaignCommand.summary(view)
                    if !client.json && line != last { print(line) }
                    last = line
                }
                return view
            }
            if client.json { try printJSON(final) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A campaign's counts and each device's outcome.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Campaign id.") var campaign: String

        func run() async throws {
            let view = try await withClient(client) { try await $0.campaign(campaign, children: true) }
            if client.json { return try printJSON(view) }
            print(CampaignCommand.summary(view))
            printTable(
                ["DEVICE", "STATE", "CODE", "DETAIL"],
                (view.children ?? []).map {
                    [$0.device, $0.state.rawValue, $0.outcome?.code ?? "", $0.outcome?.detail ?? ""]
                }
            )
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recent campaigns.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let views = try await withClient(client) { try await $0.campaigns() }
            if client.json { return try printJSON(views) }
            for view in views { print("\(view.name)  " + CampaignCommand.summary(view)) }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a running campaign's open commands.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Campaign id.") var campaign: String
        @Option(help: "Why.") var reason: String?

        func run() async throws {
            let view = try await withClient(client) { try await $0.cancelCampaign(campaign, reason: reason) }
            if client.json { return try printJSON(view) }
            print(CampaignCommand.summary(view))
        }
    }
}

import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel devices`: list, show and provision devices.
struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List, show and provision devices.",
        subcommands: [List.self, Show.self, Add.self, RotateToken.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List devices with last contact and presence.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let devices = try await withClient(client) { try await $0.allDevices() }
            if client.json { return try printJSON(devices) }
            printTable(
                ["DEVICE", "NAME", "LAST SEEN", "PRESENCE"],
                devices.map { [$0.id, $0.name ?? "", ago($0.lastSeenAt), $0.presence?.state.rawValue ?? "-"] }
            )
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one device.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Device id.") var device: String

        func run() async throws {
            let view = try await withClient(client) { try await $0.device(device) }
            if client.json { return try printJSON(view) }
            printTable(
                ["FIELD", "VALUE"],
                [
                    ["id", view.id], ["name", view.name ?? ""], ["created", view.createdAt.description],
                    ["last seen", view.lastSeenAt.map { "\($0) (\(ago($0)))" } ?? "never"],
                    ["presence", view.presenceState?.rawValue ?? "-"],
                    ["available", view.available.map { $0 ? "yes" : "no" } ?? "-"],
                    ["declared", view.presence.map { $0.state.rawValue + ($0.note.map { " — \($0)" } ?? "") } ?? "-"],
                    [
                        "clock offset",
                        view.clockOffset.map { String(format: "%+.3f s (delay %.3f s)", $0, view.clockDelay ?? 0) }
                            ?? "-",
                    ],
                    ["pending commands", view.pendingCommands.map(String.init) ?? "-"],
                    [
                        "labels",
                        view.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                    ],
                ]
            )
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Provision a device and print its bearer token (shown once).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Device id: letters, digits and . _ : - (up to 128).") var device: String
        @Option(help: "Display name.") var name: String?
        @Option(name: .customLong("label"), help: "A label as key=value; repeatable.") var labels: [String] = []

        func run() async throws {
            var parsed: [String: String] = [:]
            for label in labels {
                let parts = label.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--label must be key=value") }
                parsed[parts[0]] = parts[1]
            }
            let request = ProvisionDeviceRequest(id: device, name: name, labels: parsed)
            let provisioned = try await withClient(client) { try await $0.provision(request) }
            if client.json { return try printJSON(provisioned) }
            print("provisioned \(provisioned.device.id)")
            print("token: \(provisioned.token)")
            print("(the hub keeps only a hash; store this token on the device)")
        }
    }

    struct RotateToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-token", abstract: "Issue a new token for a device; the old one stops working.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Device id.") var device: String

        func run() async throws {
            let provisioned = try await withClient(client) { try await $0.rotateToken(device: device) }
            if client.json { return try printJSON(provisioned) }
            print("token: \(provisioned.token)")
        }
    }
}

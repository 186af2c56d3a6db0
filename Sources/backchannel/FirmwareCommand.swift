import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel firmware`: upload images and roll them out as campaigns.
struct FirmwareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firmware",
        abstract: "Upload firmware images (addressed by SHA-256) and roll them out to devices.",
        discussion: """
            Devices fetch the image over their own outbound connection, in chunks that resume \
            after an interruption, verify its SHA-256 before installing, and report each stage \
            (downloading %, verifying, installing, rebooting, done or failed) as firmware.progress events.

            Example: backchannel firmware upload meter-2.4.1.bin
                     backchannel firmware deploy <sha256> --selector label:model=m3 --per-minute 20 --ttl 86400
            """,
        subcommands: [Upload.self, List.self, Deploy.self],
        defaultSubcommand: List.self
    )

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Upload an image; prints its SHA-256.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The image file.") var file: String
        @Option(help: "A name for people (default: the file name).") var name: String?

        func run() async throws {
            let url = URL(fileURLWithPath: file)
            let data: Data
            do {
                data = try Data(contentsOf: url, options: .mappedIfSafe)
            } catch {
                throw CLIError("cannot read \(file): \(error.localizedDescription)")
            }
            let info = try await withClient(client) {
                try await $0.uploadArtifact(data, name: name ?? url.lastPathComponent)
            }
            if client.json { return try printJSON(info) }
            print("\(info.sha256)  \(info.size) bytes  \(info.name ?? "")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The uploaded images.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let items = try await withClient(client) { try await $0.artifacts() }
            if client.json { return try printJSON(items) }
            printTable(
                ["SHA-256", "BYTES", "NAME", "UPLOADED"],
                items.map { [$0.sha256, String($0.size), $0.name ?? "", $0.uploadedAt.description] })
        }
    }

    struct Deploy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Roll an image out: a campaign of firmware.install to available devices, retrying the rest.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The image's SHA-256.") var sha256: String
        @Option(name: .customLong("device"), help: "A target device (repeatable).") var devices: [String] = []
        @Option(help: "Target devices by label:<key>=<value>, or *.") var selector: String?
        @Option(help: "Waves: devices per minute.") var perMinute: Int?
        @Option(help: "Abort when this share (0-1) of finished devices failed.") var abortThreshold: Double?
        @Option(help: "Seconds to keep retrying devices not yet available (the deadline).") var ttl: Double = 86_400

        func validate() throws {
            if devices.isEmpty && selector == nil { throw ValidationError("give --device (repeatable) or --selector") }
            guard sha256.count == 64, sha256.allSatisfy(\.isHexDigit) else {
                throw ValidationError("sha256: 64 hex digits, as printed by firmware upload")
            }
        }

        func run() async throws {
            let view = try await withClient(client) { api in
                try await api.startCampaign(
                    StartCampaignRequest(
                        name: "firmware.install", args: ["sha256": .string(sha256.lowercased())],
                        devices: devices.isEmpty ? nil : devices, selector: selector, perMinute: perMinute,
                        abortThreshold: abortThreshold, untilAvailable: true, ttl: ttl))
            }
            if client.json { return try printJSON(view) }
            print(CampaignCommand.summary(view))
            print("follow it with: backchannel campaign status \(view.id)")
        }
    }
}

import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import BackchannelSecurity
import Foundation

/// `backchannel decrypt`: open the sealed readings and events an audience key may open.
struct DecryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt",
        abstract: "Open the parts of sealed readings and events that an audience key may open.",
        discussion: """
            Reads the items from a file (--in: what `readings --json` prints, an array of items, \
            or one item per line) or from the hub (--device). For each sealed item it prints the \
            parts the key opened and lists the ones it cannot open, with their audience.
              backchannel decrypt --key accounting.key --device meter-001
              backchannel readings meter-001 --json > readings.json
              backchannel decrypt --key company.key --in readings.json
            """
    )

    @OptionGroup var client: ClientOptions
    @Option(help: "The audience key file (from `keys generate --audience`).") var key: String
    @Option(name: .customLong("in"), help: "A file of stored items.") var input: String?
    @Option(help: "Fetch the device's stored items from the hub.") var device: String?
    @Option(help: "Most items to fetch with --device (1-1000).") var limit = 20

    func validate() throws {
        guard (input == nil) != (device == nil) else { throw ValidationError("give --in or --device (one of them)") }
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1-1000") }
    }

    func run() async throws {
        let audience: AudienceKey
        do { audience = try KeyFile.read(URL(fileURLWithPath: key)).audienceKey() } catch {
            throw CLIError("\(error)")
        }
        let items: [UplinkView]
        if let input {
            items = try Self.readItems(URL(fileURLWithPath: input))
        } else {
            let device = self.device ?? ""
            items = try await withClient(client) { try await $0.uplink(device: device, limit: limit).items }
        }
        let opened = SealedReader.open(items, with: audience)
        if client.json { return try printJSON(opened.map(Self.json)) }
        var sealed = 0
        for entry in opened {
            guard let opening = entry.opening else { continue }
            sealed += 1
            print(
                "\(entry.item.device) \(entry.item.id) \(entry.item.at) \(entry.item.kind.rawValue) \(entry.item.name)")
            for part in opening.opened { print("  \(part.label): \(compact(part.value))") }
            for part in opening.closed { print("  \(part.label): cannot open (\(part.reason))") }
        }
        print("\(sealed) sealed of \(items.count) items; key \(audience.name) (\(audience.keyId))")
    }

    /// The items in a file: a page (`{"items": [...]}`), an array, one object, or one per line.
    static func readItems(_ url: URL) throws -> [UplinkView] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw CLIError("cannot read \(url.path)") }
        if let page = try? WireJSON.decode(Page<UplinkView>.self, from: data) { return page.items }
        if let list = try? WireJSON.decode([UplinkView].self, from: data) { return list }
        if let one = try? WireJSON.decode(UplinkView.self, from: data) { return [one] }
        var items: [UplinkView] = []
        for line in data.split(separator: 0x0A) where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            guard let item = try? WireJSON.decode(UplinkView.self, from: Data(line)) else {
                throw CLIError("\(url.path) holds no stored readings or events (as `readings --json` prints them)")
            }
            items.append(item)
        }
        return items
    }

    static func json(_ entry: SealedReader.Item) -> JSONValue {
        var object: [String: JSONValue] = [
            "device": .string(entry.item.device), "id": .string(entry.item.id), "name": .string(entry.item.name),
            "at": .string(entry.item.at.description), "sealed": .bool(entry.opening != nil),
        ]
        if let opening = entry.opening {
            object["opened"] = .object(Dictionary(opening.opened.map { ($0.label, $0.value) }) { first, _ in first })
            object["closed"] = .array(
                opening.closed.map {
                    .object(["label": .string($0.label), "to": .string($0.to), "reason": .string($0.reason)])
                })
        }
        return .object(object)
    }
}

import ArgumentParser
import BackchannelClient
import BackchannelPower
import BackchannelProtocol
import Foundation
import NIOHTTP1

/// `backchannel power`: the power-management applications, on files or against a hub.
struct PowerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "power",
        abstract: "Power-management applications: bills, reports, supplier choice, shedding, PQ, reliability, exports.",
        discussion: """
            Every computation runs on plain files, so a result can be checked by hand: interval \
            CSV (start or end,kWh[,kvarh][,seconds]), tariff and offer JSON, RMS CSV (t,vrms), outage \
            CSV (device,start,end[,cause]) and topology JSON. Give --device instead of the data file \
            and the same computation runs at the hub on the device's stored data. Results print as \
            JSON (exports as CSV or XML). Formats: docs/power.md.
            """,
        subcommands: [
            PowerBill.self, PowerReport.self, PowerCompare.self, PowerPQ.self, PowerReliability.self,
            PowerShed.self, PowerPrice.self, PowerExport.self, PowerTariffs.self, PowerOffers.self,
            PowerOutages.self, PowerTopology.self, PowerAlerts.self, PowerTamper.self,
        ]
    )
}

// MARK: - Shared helpers

/// Reads a whole text file, with an error that names it.
func readText(_ path: String, what: String) throws -> String {
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw CLIError("\(what) \(path): cannot be read (\(error.localizedDescription))")
    }
}

/// Reads a whole file as bytes, with an error that names it.
func readData(_ path: String, what: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIError("\(what) \(path): cannot be read")
    }
    return data
}

/// An RFC 3339 option value.
func parseTime(_ text: String?, option: String) throws -> Timestamp? {
    guard let text else { return nil }
    guard let time = Timestamp(rfc3339: text) else {
        throw ValidationError("\(option) must be an RFC 3339 time with a zone, e.g. 2026-07-01T00:00:00Z")
    }
    return time
}

/// Runs a computation, turning refused input into a clean error message.
func computing<T>(_ what: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as PowerInputError {
        throw CLIError("\(what): \(error.message)")
    }
}

/// Interval data from a CSV file.
struct IntervalFileOptions: ParsableArguments {
    @Option(help: "Interval CSV: start or end (or timestamp with --timestamps), kWh, optional kvarh and seconds.")
    var intervals: String?

    @Option(help: "For a `timestamp` column: whether it marks the interval's start or its end.")
    var timestamps: IntervalTimestamp?

    func load() throws -> [IntervalReading]? {
        guard let intervals else { return nil }
        let text = try readText(intervals, what: "--intervals")
        return try computing("--intervals \(intervals)") {
            try IntervalSeries(csv: text, timestampConvention: timestamps).readings
        }
    }
}

/// `--from`/`--to`, defaulting to the data's own span.
struct PeriodOptions: ParsableArguments {
    @Option(help: "Start of the period, RFC 3339 (default: the first interval's start, or 30 days ago at the hub).")
    var from: String?

    @Option(help: "End of the period, RFC 3339, exclusive (default: the last interval's end, or now at the hub).")
    var to: String?

    func validate() throws {
        let from = try parseTime(from, option: "--from")
        let to = try parseTime(to, option: "--to")
        if let from, let to, from >= to { throw ValidationError("--from must be before --to") }
    }

    /// The period over file data.
    func period(of intervals: [IntervalReading]) throws -> (Timestamp, Timestamp) {
        guard let first = intervals.first, let last = intervals.last else {
            throw CLIError("the interval file has no intervals")
        }
        return (try parseTime(from, option: "--from") ?? first.start, try parseTime(to, option: "--to") ?? last.end)
    }

    /// The period as hub query parameters.
    var query: [String: String?] { ["from": from, "to": to] }
}

/// Prints a hub answer: JSON pretty-printed, anything else as it came.
func printHubBody(_ data: Data) {
    if let value = try? WireJSON.decode(JSONValue.self, from: data),
        let pretty = try? WireJSON.encoder(pretty: true).encode(value)
    {
        print(String(decoding: pretty, as: UTF8.self))
    } else {
        print(String(decoding: data, as: UTF8.self), terminator: "")
    }
}

// MARK: - Bills, reports, supplier choice

struct PowerBill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bill",
        abstract: "Compute a bill with every line item: TOU energy, fixed, demand, on-peak demand, PF adjustment.",
        discussion: """
            On files: backchannel power bill --tariff T.json --intervals I.csv [--from --to]. \
            At the hub: backchannel power bill --device meter-001 --tariff-id residential-tou. \
            Missing intervals are listed and the bill marked incomplete; they are never billed as zero.
            """
    )

    @OptionGroup var data: IntervalFileOptions
    @OptionGroup var period: PeriodOptions
    @Option(help: "Tariff JSON file (OpenEI URDB-like; see docs/power.md).") var tariff: String?
    @Option(help: "At the hub: the device whose stored intervals are billed.") var device: String?
    @Option(name: .customLong("tariff-id"), help: "At the hub: the id of a stored tariff.") var tariffID: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if device == nil {
            guard tariff != nil, data.intervals != nil else {
                throw ValidationError("give --tariff and --intervals, or --device and --tariff-id")
            }
        } else {
            guard tariffID != nil else {
                throw ValidationError("--device needs --tariff-id (a tariff stored at the hub)")
            }
        }
    }

    func run() async throws {
        if let device, let tariffID {
            var query = period.query
            query["tariff"] = tariffID
            let body = try await withClient(client) {
                try await $0.power(.GET, "/devices/\(device)/bill", query: query)
            }
            return printHubBody(body)
        }
        guard let tariffPath = tariff, let intervals = try data.load() else { return }
        let tariff = try computing("--tariff \(tariffPath)") {
            try Tariff(json: try readData(tariffPath, what: "--tariff"))
        }
        let (from, to) = try period.period(of: intervals)
        let bill = try computing("bill") { try Bill.compute(tariff: tariff, intervals: intervals, from: from, to: to) }
        try printJSON(bill)
    }
}

struct PowerReport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Consumption, peak demand and load factor of a device, or a group with its coincident peak.",
        discussion: """
            On a file: backchannel power report --intervals I.csv [--name meter-001]. \
            At the hub: backchannel power report --device meter-001 [--device meter-002 … --group feeder-1].
            """
    )

    @OptionGroup var data: IntervalFileOptions
    @OptionGroup var period: PeriodOptions
    @Option(help: "The device name to print for file data.") var name = "device"
    @Option(help: "At the hub: a device (repeat for a group report).") var device: [String] = []
    @Option(help: "At the hub: the group's name in a group report.") var group: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard data.intervals != nil || !device.isEmpty else { throw ValidationError("give --intervals or --device") }
    }

    func run() async throws {
        if let intervals = try data.load() {
            let (from, to) = try period.period(of: intervals)
            let report = try computing("report") {
                try LoadReport.compute(
                    device: name, intervals: intervals, from: from, to: to, intervalSeconds: intervals.first?.seconds)
            }
            return try printJSON(report)
        }
        let body = try await withClient(client) { client in
            if device.count == 1, group == nil {
                return try await client.power(.GET, "/devices/\(device[0])/report", query: period.query)
            }
            var query = period.query
            query["devices"] = device.joined(separator: ",")
            query["group"] = group
            return try await client.power(.GET, "/report", query: query)
        }
        printHubBody(body)
    }
}

struct PowerCompare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare supplier offers on a real load profile; pick the cheapest, or reduce consumption.",
        discussion: """
            On files: backchannel power compare --offers O.json --intervals I.csv --ceiling 0.30. \
            At the hub: backchannel power compare --device meter-001 --ceiling 0.30 [--offers O.json] \
            [--dry-run]: the hub compares on the device's stored intervals and sends switch-supplier \
            or reduce-consumption to the device.
            """
    )

    @OptionGroup var data: IntervalFileOptions
    @OptionGroup var period: PeriodOptions
    @Option(help: "Offers JSON: [{\"supplier\", \"offerID\"?, \"tariff\"}] (at the hub: default, its stored offers).")
    var offers: String?
    @Option(help: "The most the customer pays on average, currency per kWh (an average equal to it is acceptable).")
    var ceiling: String
    @Option(help: "The current supplier (a tie with it means stay).") var current: String?
    @Option(help: "At the hub: the device.") var device: String?
    @Flag(help: "At the hub: compare only; send nothing to the device.") var dryRun = false
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard let value = Decimal(string: ceiling), value >= 0 else { throw ValidationError("--ceiling must be ≥ 0") }
        guard device != nil || (data.intervals != nil && offers != nil) else {
            throw ValidationError("give --offers and --intervals, or --device")
        }
    }

    func run() async throws {
        let ceilingValue = Decimal(string: ceiling) ?? 0
        let offerList = try offers.map { path in
            try computing("--offers \(path)") { try SupplierOffer.offers(json: try readData(path, what: "--offers")) }
        }
        if let device {
            let body = SupplierChoiceRequestBody(
                from: try parseTime(period.from, option: "--from"), to: try parseTime(period.to, option: "--to"),
                ceilingPerKWh: ceilingValue, currentSupplier: current, offers: offerList, send: !dryRun)
            let answer = try await withClient(client) {
                try await $0.power(.POST, "/devices/\(device)/supplier-choice", body: try WireJSON.encode(body))
            }
            return printHubBody(answer)
        }
        guard let intervals = try data.load(), let offerList else { return }
        let (from, to) = try period.period(of: intervals)
        let choice = try computing("compare") {
            try SupplierChoice.evaluate(
                offers: offerList, intervals: intervals, from: from, to: to, ceilingPerKWh: ceilingValue,
                currentSupplier: current)
        }
        try printJSON(choice)
    }
}

/// The body of `POST /v1/power/devices/{id}/supplier-choice`.
struct SupplierChoiceRequestBody: Codable {
    var from: Timestamp?
    var to: Timestamp?
    var ceilingPerKWh: Decimal
    var currentSupplier: String?
    var offers: [SupplierOffer]?
    var send: Bool
}

import ArgumentParser
import BackchannelClient
import BackchannelPower
import BackchannelProtocol
import Foundation
import NIOHTTP1

// MARK: - Power quality, reliability, shedding

struct PowerPQ: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pq",
        abstract: "Detect and classify power quality events (IEC 61000-4-30 style, IEEE 1159 classes).",
        discussion: """
            On a file: backchannel power pq --rms file.csv --nominal 230 [--frequency 50] [--start T]. \
            The CSV has a time column, t (seconds from --start) or time (RFC 3339), and vrms (or v), \
            one half-cycle RMS value per row. Without --rms, lists the events devices reported to the hub.
            """
    )

    @Option(help: "Half-cycle RMS CSV: t or time, and vrms.") var rms: String?
    @Option(help: "Declared (nominal) voltage, V.") var nominal: Double = 230
    @Option(help: "System frequency, 50 or 60 Hz.") var frequency = 50
    @Option(help: "Time of t = 0, RFC 3339 (needed with a t column).") var start: String?
    @Option(help: "Dip threshold, % of nominal.") var dip: Double = 90
    @Option(help: "Swell threshold, % of nominal.") var swell: Double = 110
    @Option(help: "Interruption threshold, % of nominal (IEEE 1159: 10; IEC 61000-4-30: often 5).")
    var interruption: Double = 10
    @Option(help: "Hysteresis, % of nominal.") var hysteresis: Double = 2
    @Option(help: "At the hub: only this device's events.") var device: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard nominal > 0, nominal.isFinite else { throw ValidationError("--nominal must be a voltage above 0") }
        guard frequency == 50 || frequency == 60 else { throw ValidationError("--frequency must be 50 or 60") }
        _ = try parseTime(start, option: "--start")
    }

    func run() async throws {
        guard let rms else {
            let body = try await withClient(client) { try await $0.power(.GET, "/pq", query: ["device": device]) }
            return printHubBody(body)
        }
        let text = try readText(rms, what: "--rms")
        let thresholds = PQThresholds(
            dipPercent: dip, swellPercent: swell, interruptionPercent: interruption, hysteresisPercent: hysteresis)
        let result = try computing("--rms \(rms)") {
            try thresholds.validate()
            let series = try RMSSeries(
                csv: text, nominalVolts: nominal, frequencyHz: frequency, start: try parseTime(start, option: "--start")
            )
            return try PQEventDetector(thresholds: thresholds).detect(series)
        }
        try printJSON(result)
    }
}

struct PowerReliability: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reliability",
        abstract: "IEEE 1366 indices (SAIFI, SAIDI, CAIDI, MAIFI, ASAI) and nines, per node and branch.",
        discussion: """
            On files: backchannel power reliability --outages O.csv --topology T.json --from … --to …. \
            Outages CSV: device,start,end[,cause] (empty end: still open). Topology: JSON nodes \
            [{"id","parent"?,"role","customers"?}] or CSV id,parent,role[,customers]. Momentary is \
            ≤ 5 min. Without files, computes at the hub from its outage records and declared topology.
            """
    )

    @Option(help: "Outage records, CSV or JSON.") var outages: String?
    @Option(help: "The feeder tree, JSON or CSV.") var topology: String?
    @OptionGroup var period: PeriodOptions
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard (outages == nil) == (topology == nil) else { throw ValidationError("give both --outages and --topology") }
        if outages != nil, period.from == nil || period.to == nil {
            throw ValidationError("on files, give the period with --from and --to")
        }
    }

    func run() async throws {
        guard let outages, let topology else {
            let body = try await withClient(client) { try await $0.power(.GET, "/reliability", query: period.query) }
            return printHubBody(body)
        }
        let outageText = try readText(outages, what: "--outages")
        let treeText = try readText(topology, what: "--topology")
        let report = try computing("reliability") {
            let records =
                outages.hasSuffix(".json")
                ? try ReliabilityOutage.decodeJSON(Data(outageText.utf8)) : try ReliabilityOutage.parseCSV(outageText)
            let tree =
                topology.hasSuffix(".csv") ? try FeederTree(csv: treeText) : try FeederTree(json: Data(treeText.utf8))
            guard let from = try? parseTime(period.from, option: "--from"),
                let to = try? parseTime(period.to, option: "--to")
            else { throw PowerInputError("--from and --to are needed") }
            return try tree.reliability(outages: records, periodStart: from, periodEnd: to)
        }
        try printJSON(report)
    }
}

struct PowerShed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shed",
        abstract: "Tariff-threshold load shedding: run a price-limit schedule over prices, or set it for a device.",
        discussion: """
            On files: backchannel power shed --schedule S.json --prices P.csv prints every decision \
            with its reason (prices CSV: time,price). With --device, stores the schedule as the \
            device's policy at the hub: a live price above the limit in force sends `shed`, a price \
            back below it sends `restore`. --seed writes the seed example (0.80 $/kWh 06:00-18:00, \
            0.60 otherwise). Without --schedule and --seed, lists the hub's decisions.
            """
    )

    @Option(help: "Price-limit schedule JSON: {timeZone, defaultLimit, windows: [{from, to, limit}]}.")
    var schedule: String?
    @Flag(help: "Use the seed example schedule.") var seed = false
    @Option(help: "Time zone of the seed example.") var timeZone = "UTC"
    @Option(help: "Prices CSV: time,price.") var prices: String?
    @Option(help: "Evaluate up to this time (default: the last price).") var until: String?
    @Option(help: "At the hub: the device to shed and restore.") var device: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if prices != nil, schedule == nil, !seed { throw ValidationError("--prices needs --schedule or --seed") }
        _ = try parseTime(until, option: "--until")
    }

    func loadSchedule() throws -> PriceLimitSchedule? {
        if seed { return .seedExample(timeZone: timeZone) }
        guard let schedule else { return nil }
        let data = try readData(schedule, what: "--schedule")
        do {
            let decoded = try WireJSON.decode(PriceLimitSchedule.self, from: data)
            try decoded.validate()
            return decoded
        } catch let error as PowerInputError {
            throw CLIError("--schedule \(schedule): \(error.message)")
        } catch {
            throw CLIError("--schedule \(schedule): \(WireJSON.describe(error))")
        }
    }

    func run() async throws {
        let loaded = try loadSchedule()
        if let device {
            guard let loaded else { throw ValidationError("--device needs --schedule or --seed") }
            let body = try await withClient(client) {
                try await $0.power(.PUT, "/shedding/\(device)", body: try WireJSON.encode(loaded))
            }
            return printHubBody(body)
        }
        guard let loaded, let prices else {
            let body = try await withClient(client) { try await $0.power(.GET, "/shedding/decisions") }
            return printHubBody(body)
        }
        let points = try computing("--prices \(prices)") {
            try PricePoint.parseCSV(try readText(prices, what: "--prices"))
        }
        guard let last = points.last else { throw CLIError("--prices \(prices): no prices") }
        let end = try parseTime(until, option: "--until") ?? last.time
        let decisions = try computing("shed") {
            var controller = try LoadShedController(schedule: loaded)
            return try controller.run(points, until: end)
        }
        try printJSON(decisions)
    }
}

struct PowerPrice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "price",
        abstract: "Give the hub a live price: every shedding policy decides, and logs why.")

    @Argument(help: "The price, currency per kWh.") var price: Double
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard price.isFinite, price >= 0, price < 1_000_000 else {
            throw ValidationError("the price must be 0-1000000")
        }
    }

    func run() async throws {
        let body = try await withClient(client) {
            try await $0.power(.POST, "/price", body: try WireJSON.encode(["price": price]))
        }
        printHubBody(body)
    }
}

// MARK: - Exports

struct PowerExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export interval data as CSV, self-describing XML or Green Button (NAESB ESPI) XML.",
        discussion: """
            On a file: backchannel power export --intervals I.csv --format greenbutton --name meter-001 \
            --time-zone America/New_York. At the hub: backchannel power export --device meter-001 \
            --format greenbutton --from … --to …. Validate Green Button with xmllint and \
            Tests/Schemas/greenbutton/espiDerived.xsd.
            """
    )

    @OptionGroup var data: IntervalFileOptions
    @OptionGroup var period: PeriodOptions
    @Option(help: "csv, xml or greenbutton.") var format = "greenbutton"
    @Option(help: "The device name written in the export (file data).") var name = "device"
    @Option(help: "Local time zone of the Green Button LocalTimeParameters (file data).") var timeZone = "UTC"
    @Option(help: "At the hub: the device.") var device: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard ["csv", "xml", "greenbutton"].contains(format) else {
            throw ValidationError("--format must be csv, xml or greenbutton")
        }
        guard data.intervals != nil || device != nil else { throw ValidationError("give --intervals or --device") }
        guard TimeZone(identifier: timeZone) != nil else { throw ValidationError("--time-zone: unknown time zone") }
    }

    func run() async throws {
        if let device {
            var query = period.query
            query["format"] = format
            let body = try await withClient(client) {
                try await $0.power(.GET, "/devices/\(device)/intervals", query: query)
            }
            return print(String(decoding: body, as: UTF8.self), terminator: "")
        }
        guard let intervals = try data.load() else { return }
        let (from, to) = try period.period(of: intervals)
        let text = try computing("export") {
            switch format {
            case "csv": return try IntervalExport(deviceID: name, from: from, to: to, readings: intervals).csv()
            case "xml": return try IntervalExport(deviceID: name, from: from, to: to, readings: intervals).xml()
            default:
                return try GreenButtonExport(
                    deviceID: name, title: "Interval data for \(name)", timeZone: timeZone, from: from, to: to,
                    generated: .now(), readings: intervals
                ).xml()
            }
        }
        print(text, terminator: "")
    }
}

// MARK: - Hub records

struct PowerTariffs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tariffs",
        abstract: "List the hub's tariffs, or store one: backchannel power tariffs --put residential-tou --file T.json."
    )

    @Option(help: "Store the tariff under this id.") var put: String?
    @Option(help: "The tariff JSON file to store.") var file: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard (put == nil) == (file == nil) else { throw ValidationError("--put and --file go together") }
    }

    func run() async throws {
        let body = try await withClient(client) { client in
            if let put, let file {
                return try await client.power(.PUT, "/tariffs/\(put)", body: try readData(file, what: "--file"))
            }
            return try await client.power(.GET, "/tariffs")
        }
        printHubBody(body)
    }
}

struct PowerOffers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offers",
        abstract: "List supplier offers at the hub, or push one: backchannel power offers --add offer.json.")

    @Option(help: "An offer JSON file: {\"supplier\", \"offerID\"?, \"tariff\"}.") var add: String?
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let body = try await withClient(client) { client in
            if let add { return try await client.power(.POST, "/offers", body: try readData(add, what: "--add")) }
            return try await client.power(.GET, "/offers")
        }
        printHubBody(body)
    }
}

struct PowerOutages: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outages", abstract: "Outage records from last gasps and restorations, newest first.")

    @Option(help: "Only this device's.") var device: String?
    @Flag(help: "Only outages still open.") var open = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let body = try await withClient(client) {
            try await $0.power(.GET, "/outages", query: ["device": device, "open": open ? "true" : nil])
        }
        printHubBody(body)
    }
}

struct PowerTopology: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology", abstract: "The feeder trees devices declared, with branch roll-ups (kW, available).")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        printHubBody(try await withClient(client) { try await $0.power(.GET, "/topology") })
    }
}

struct PowerAlerts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "Topology alerts sent for power quality events, with the measured propagation time.")

    @Option(help: "Only alerts for events at this device.") var device: String?
    @OptionGroup var client: ClientOptions

    func run() async throws {
        printHubBody(try await withClient(client) { try await $0.power(.GET, "/alerts", query: ["device": device]) })
    }
}

struct PowerTamper: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tamper",
        abstract:
            "Tamper and fraud flags: registers going backwards, sub-meters off their master, clock jumps, clones.",
        discussion: """
            On files: --registers R.csv (device,at,kWh) flags energy registers going backwards;             --submeters G.json ({"master", "masterReadings": [intervals], "submeters": {"id": [intervals]}})             compares a master meter with the sum of its sub-meters, quarter hour by quarter hour.             Without files, lists the flags the hub raised.
            """
    )

    @Option(help: "Register readings CSV: device,at,kWh.") var registers: String?
    @Option(help: "A master meter and its sub-meters, JSON.") var submeters: String?
    @Option(help: "At the hub: only this device's.") var device: String?
    @OptionGroup var client: ClientOptions

    func run() async throws {
        if let registers {
            let text = try readText(registers, what: "--registers")
            return try printJSON(
                try computing("--registers \(registers)") {
                    try TamperDetector.registerBackwards(try RegisterReading.parseCSV(text))
                })
        }
        if let submeters {
            let data = try readData(submeters, what: "--submeters")
            let group: SubmeterGroup
            do {
                group = try WireJSON.decode(SubmeterGroup.self, from: data)
            } catch {
                throw CLIError("--submeters \(submeters): \(WireJSON.describe(error))")
            }
            return try printJSON(
                try computing("--submeters \(submeters)") { try TamperDetector.submeterImbalance(group) })
        }
        printHubBody(try await withClient(client) { try await $0.power(.GET, "/tamper", query: ["device": device]) })
    }
}

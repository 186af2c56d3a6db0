import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

private func time(_ text: String) throws -> Timestamp { try #require(Timestamp(rfc3339: text)) }

/// The seed schedule in New York: 0.80 $/kWh 06:00–18:00 local, 0.60 otherwise.
private let newYork = PriceLimitSchedule.seedExample(timeZone: "America/New_York")

private func limitText(_ schedule: PriceLimitSchedule, _ at: String) throws -> String {
    let inForce = try schedule.limit(at: time(at))
    return "\(inForce.limit) \(inForce.window ?? "default")"
}

@Suite("Tariff-threshold load shedding")
struct LoadSheddingTests {
    @Test("window edges: 06:00 is inside (inclusive), 18:00 is outside (exclusive)")
    func windowEdges() throws {
        // 15 June 2026 is EDT, UTC−4: 06:00 local = 10:00Z, 18:00 local = 22:00Z.
        #expect(try limitText(newYork, "2026-06-15T09:59:59.999Z") == "0.6 default")
        #expect(try limitText(newYork, "2026-06-15T10:00:00.000Z") == "0.8 06:00–18:00")
        #expect(try limitText(newYork, "2026-06-15T21:59:59.999Z") == "0.8 06:00–18:00")
        #expect(try limitText(newYork, "2026-06-15T22:00:00.000Z") == "0.6 default")
    }

    @Test("price equal to the limit holds in both states; one cent either side acts")
    func priceBoundary() throws {
        let window = PriceLimitInForce(limit: dec("0.80"), window: "06:00–18:00")
        let now = try time("2026-06-15T16:00:00Z")
        func decide(_ state: LoadShedState, _ price: String) -> LoadShedDecision {
            LoadShedDecision.decide(
                state: state, price: dec(price), limit: window, at: now, trigger: .priceChange)
        }
        let shed = decide(.normal, "0.85")
        #expect(shed.action == .shed)
        #expect(shed.state == .shed)
        #expect(shed.previousState == .normal)
        #expect(shed.reason == "price 0.85 $/kWh exceeds the 0.80 limit in force 06:00–18:00")
        #expect(decide(.normal, "0.81").action == .shed)
        let equalOn = decide(.normal, "0.80")
        #expect(equalOn.action == .hold)
        #expect(equalOn.state == .normal)
        #expect(
            equalOn.reason
                == "price 0.80 $/kWh does not exceed the 0.80 limit in force 06:00–18:00; the load stays on"
        )
        let equalShed = decide(.shed, "0.80")
        #expect(equalShed.action == .hold)
        #expect(equalShed.state == .shed)
        #expect(
            equalShed.reason
                == "price 0.80 $/kWh is not below the 0.80 limit in force 06:00–18:00; the load stays shed")
        let restore = decide(.shed, "0.79")
        #expect(restore.action == .restore)
        #expect(restore.state == .normal)
        #expect(restore.reason == "price 0.79 $/kWh is below the 0.80 limit in force 06:00–18:00")
        #expect(decide(.shed, "0.9").action == .hold)
        #expect(decide(.normal, "0.5").action == .hold)
    }

    @Test("reason text: default limit phrase and at least two decimals")
    func reasonText() {
        let fallback = PriceLimitInForce(limit: dec("0.6"), window: nil)
        let now = Timestamp(milliseconds: 0)
        let restore = LoadShedDecision.decide(
            state: .shed, price: dec("0.5"), limit: fallback, at: now, trigger: .evaluation)
        #expect(
            restore.reason
                == "price 0.50 $/kWh is below the 0.60 default limit in force outside the windows")
        let shed = LoadShedDecision.decide(
            state: .normal, price: dec("1"), limit: fallback, at: now, trigger: .evaluation)
        #expect(
            shed.reason == "price 1.00 $/kWh exceeds the 0.60 default limit in force outside the windows")
        let fine = LoadShedDecision.decide(
            state: .normal, price: dec("0.825"), limit: fallback, at: now, trigger: .evaluation)
        #expect(fine.reason.hasPrefix("price 0.825 $/kWh exceeds"))
        let negative = LoadShedDecision.decide(
            state: .shed, price: dec("-0.5"), limit: fallback, at: now, trigger: .evaluation)
        #expect(negative.reason.hasPrefix("price -0.50 $/kWh is below"))
    }

    @Test("an unchanged price sheds at 18:00 and restores at 06:00 through the limit change alone")
    func limitChangeAlone() throws {
        var controller = try LoadShedController(schedule: newYork)
        // 12:00 EDT (16:00Z): 0.70 ≤ 0.80 → hold.
        let noon = try controller.priceChanged(to: dec("0.70"), at: time("2026-06-15T16:00:00Z"))
        #expect(noon.action == .hold)
        // The limit next changes at 18:00 EDT = 22:00Z.
        let change = try #require(try newYork.nextLimitChange(after: time("2026-06-15T16:00:00Z")))
        #expect(change == (try time("2026-06-15T22:00:00Z")))
        // At 18:00 the limit is 0.60 and 0.70 > 0.60 → shed.
        let evening = try controller.evaluate(at: change)
        #expect(evening.action == .shed)
        #expect(evening.trigger == .evaluation)
        #expect(evening.window == nil)
        #expect(
            evening.reason
                == "price 0.70 $/kWh exceeds the 0.60 default limit in force outside the windows")
        #expect(controller.state == .shed)
    }

    @Test("run() evaluates at every limit change between prices and up to the end")
    func run() throws {
        var controller = try LoadShedController(schedule: newYork)
        let prices = [PricePoint(time: try time("2026-06-15T16:00:00Z"), price: dec("0.70"))]
        let decisions = try controller.run(prices, until: time("2026-06-16T12:00:00Z"))
        // 16:00Z hold (0.70 ≤ 0.80); 22:00Z = 18:00 EDT shed (0.70 > 0.60);
        // 10:00Z next day = 06:00 EDT restore (0.70 < 0.80).
        #expect(decisions.map(\.action) == [.hold, .shed, .restore])
        #expect(
            decisions.map(\.time.description) == [
                "2026-06-15T16:00:00.000Z", "2026-06-15T22:00:00.000Z", "2026-06-16T10:00:00.000Z",
            ])
        #expect(decisions.map(\.trigger) == [.priceChange, .evaluation, .evaluation])
    }

    @Test("a window across midnight: 22:00 inclusive through 06:00 exclusive")
    func midnightWindow() throws {
        let night = PriceLimitSchedule(
            timeZone: "UTC", defaultLimit: dec("0.60"),
            windows: [PriceLimitWindow(from: "22:00", to: "06:00", limit: dec("0.40"))])
        #expect(try limitText(night, "2026-06-15T21:59:59.999Z") == "0.6 default")
        #expect(try limitText(night, "2026-06-15T22:00:00.000Z") == "0.4 22:00–06:00")
        #expect(try limitText(night, "2026-06-16T00:00:00.000Z") == "0.4 22:00–06:00")
        #expect(try limitText(night, "2026-06-16T05:59:59.999Z") == "0.4 22:00–06:00")
        #expect(try limitText(night, "2026-06-16T06:00:00.000Z") == "0.6 default")
        #expect(
            try night.nextLimitChange(after: time("2026-06-15T12:00:00Z"))
                == (try time("2026-06-15T22:00:00Z")))
        #expect(
            try night.nextLimitChange(after: time("2026-06-15T23:00:00Z"))
                == (try time("2026-06-16T06:00:00Z")))
    }

    @Test("DST days: 06:00 and 18:00 follow the local clock")
    func dstDays() throws {
        // 7 March 2026 is EST (UTC−5): 06:00 = 11:00Z, so 10:30Z (05:30) is outside.
        #expect(try limitText(newYork, "2026-03-07T10:30:00Z") == "0.6 default")
        #expect(try limitText(newYork, "2026-03-07T11:00:00Z") == "0.8 06:00–18:00")
        // 8 March: clocks go 02:00 EST → 03:00 EDT at 07:00Z; 06:00 EDT = 10:00Z.
        #expect(try limitText(newYork, "2026-03-08T09:59:59.999Z") == "0.6 default")
        #expect(try limitText(newYork, "2026-03-08T10:00:00Z") == "0.8 06:00–18:00")
        #expect(
            try newYork.nextLimitChange(after: time("2026-03-08T05:00:00Z"))
                == (try time("2026-03-08T10:00:00Z")))
        // 1 November: clocks go 02:00 EDT → 01:00 EST at 06:00Z; 18:00 EST = 23:00Z.
        #expect(try limitText(newYork, "2026-11-01T22:59:59.999Z") == "0.8 06:00–18:00")
        #expect(try limitText(newYork, "2026-11-01T23:00:00Z") == "0.6 default")
    }

    @Test("an edge in the skipped hour takes effect at the jump; the repeated hour is in force twice")
    func dstGapAndRepeat() throws {
        // 02:30 does not exist on 8 March: 01:59:59.999 EST (06:59:59.999Z) is before it and
        // the next instant, 07:00Z, reads 03:00 EDT, past it.
        let gap = PriceLimitSchedule(
            timeZone: "America/New_York", defaultLimit: dec("0.60"),
            windows: [PriceLimitWindow(from: "02:30", to: "05:00", limit: dec("0.90"))])
        #expect(try limitText(gap, "2026-03-08T06:59:59.999Z") == "0.6 default")
        #expect(try limitText(gap, "2026-03-08T07:00:00Z") == "0.9 02:30–05:00")
        #expect(
            try gap.nextLimitChange(after: time("2026-03-08T05:00:00Z"))
                == (try time("2026-03-08T07:00:00Z")))
        // 05:00 EDT = 09:00Z.
        #expect(
            try gap.nextLimitChange(after: time("2026-03-08T07:00:00Z"))
                == (try time("2026-03-08T09:00:00Z")))

        // 1 November: 01:30 EDT = 05:30Z enters; at 06:00Z the clock reads 01:00 EST (out);
        // 01:30 EST = 06:30Z enters again.
        let repeated = PriceLimitSchedule(
            timeZone: "America/New_York", defaultLimit: dec("0.60"),
            windows: [PriceLimitWindow(from: "01:30", to: "05:00", limit: dec("0.90"))])
        let changes = try [
            "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z",
        ].map { try repeated.nextLimitChange(after: time($0))?.description }
        #expect(
            changes == [
                "2026-11-01T05:30:00.000Z", "2026-11-01T06:00:00.000Z", "2026-11-01T06:30:00.000Z",
            ])
    }

    @Test("a schedule without a different limit never changes")
    func noChange() throws {
        let flat = PriceLimitSchedule(timeZone: "UTC", defaultLimit: dec("0.60"), windows: [])
        #expect(try flat.nextLimitChange(after: time("2026-06-15T00:00:00Z")) == nil)
    }

    @Test("schedules are validated: overlaps, formats, zone, limits")
    func validation() {
        func check(_ windows: [PriceLimitWindow], zone: String = "UTC", fallback: String = "0.60")
            throws
        {
            try PriceLimitSchedule(timeZone: zone, defaultLimit: dec(fallback), windows: windows)
                .validate()
        }
        let day = PriceLimitWindow(from: "06:00", to: "18:00", limit: dec("0.80"))
        #expect(throws: PowerInputError("windows[1] (17:00–20:00) overlaps windows[0] (06:00–18:00)")) {
            try check([day, PriceLimitWindow(from: "17:00", to: "20:00", limit: dec("0.7"))])
        }
        #expect(throws: PowerInputError("windows[1] (05:00–07:00) overlaps windows[0] (22:00–06:00)")) {
            try check([
                PriceLimitWindow(from: "22:00", to: "06:00", limit: dec("0.4")),
                PriceLimitWindow(from: "05:00", to: "07:00", limit: dec("0.7")),
            ])
        }
        // Touching windows do not overlap (the end is exclusive), and 24:00 ends the day.
        #expect(throws: Never.self) {
            try check([day, PriceLimitWindow(from: "18:00", to: "24:00", limit: dec("0.7"))])
        }
        #expect(
            throws: PowerInputError(
                "windows[0]: from and to are the same time; an all-day limit is the defaultLimit")
        ) {
            try check([PriceLimitWindow(from: "00:00", to: "24:00", limit: dec("0.7"))])
        }
        #expect(throws: PowerInputError("windows[0].from: \"24:00\" is past the end of the day")) {
            try check([PriceLimitWindow(from: "24:00", to: "06:00", limit: dec("0.7"))])
        }
        #expect(throws: PowerInputError("windows[0].from: \"6:00\" is not a time HH:MM")) {
            try check([PriceLimitWindow(from: "6:00", to: "18:00", limit: dec("0.7"))])
        }
        #expect(throws: PowerInputError("windows[0].to: \"12:60\" is not a time HH:MM")) {
            try check([PriceLimitWindow(from: "06:00", to: "12:60", limit: dec("0.7"))])
        }
        #expect(throws: PowerInputError("timeZone \"Mars/Olympus\" is not a known time-zone id")) {
            try check([], zone: "Mars/Olympus")
        }
        #expect(throws: PowerInputError("defaultLimit must be a number ≥ 0")) {
            try check([], fallback: "-0.1")
        }
    }

    @Test("the controller refuses time going backwards and evaluation without a price")
    func controllerErrors() throws {
        var controller = try LoadShedController(schedule: newYork)
        #expect(throws: PowerInputError("no price has been received yet; nothing to evaluate")) {
            try controller.evaluate(at: time("2026-06-15T16:00:00Z"))
        }
        _ = try controller.priceChanged(to: dec("0.5"), at: time("2026-06-15T16:00:00Z"))
        #expect(
            throws: PowerInputError(
                "time 2026-06-15T15:00:00.000Z is before the last decision at 2026-06-15T16:00:00.000Z")
        ) {
            try controller.evaluate(at: time("2026-06-15T15:00:00Z"))
        }
    }

    @Test("schedules decode from JSON; decisions encode with every field")
    func json() throws {
        let text =
            #"{"timeZone":"America/New_York","defaultLimit":0.60,"windows":[{"from":"06:00","to":"18:00","limit":0.80}]}"#
        let schedule = try JSONDecoder().decode(PriceLimitSchedule.self, from: Data(text.utf8))
        #expect(schedule == newYork)
        var controller = try LoadShedController(schedule: schedule)
        let decision = try controller.priceChanged(to: dec("0.85"), at: time("2026-06-15T16:00:00Z"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(decision), as: UTF8.self)
        #expect(json.contains(#""action":"shed""#))
        #expect(json.contains(#""previousState":"normal""#))
        #expect(json.contains(#""window":"06:00–18:00""#))
        #expect(json.contains(#""time":"2026-06-15T16:00:00.000Z""#))
        #expect(
            try JSONDecoder().decode(LoadShedDecision.self, from: encoder.encode(decision)) == decision)
    }

    @Test("price CSV: time and price columns, errors naming the line")
    func priceCSV() throws {
        let points = try PricePoint.parseCSV(
            "time,price\n2026-06-15T16:00:00Z,0.85\n2026-06-15T17:00:00Z,-0.02\n")
        #expect(points.map(\.price) == [dec("0.85"), dec("-0.02")])
        #expect(throws: PowerInputError("line 3, price: \"0.8x\" is not a decimal number")) {
            try PricePoint.parseCSV("time,price\n2026-06-15T16:00:00Z,0.85\n2026-06-15T17:00:00Z,0.8x\n")
        }
        #expect(
            throws: PowerInputError(
                "line 3: time 2026-06-15T16:00:00.000Z does not come after the line before")
        ) {
            try PricePoint.parseCSV("time,price\n2026-06-15T16:00:00Z,0.85\n2026-06-15T16:00:00Z,0.9\n")
        }
    }
}

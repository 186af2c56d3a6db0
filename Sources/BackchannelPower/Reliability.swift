public import BackchannelProtocol
public import Foundation

/// One outage as input to the reliability indices: the device whose subtree lost power and when.
///
/// JSON: `{"device": "b2", "start": "2026-01-01T12:00:00Z", "end": "2026-01-01T13:00:00Z", "cause": "tree"}`;
/// `end` absent or null means still open; `cause` is optional.
/// CSV: `device,start,end[,cause]` with RFC 3339 times; an empty `end` means still open.
public struct ReliabilityOutage: Sendable, Hashable, Codable {
    /// The device where power was lost; every customer of its subtree is interrupted.
    public var device: String
    /// When power was lost.
    public var start: Timestamp
    /// When power came back; nil while open (it then runs to the period end).
    public var end: Timestamp?
    /// The cause, if known.
    public var cause: String?

    /// Creates an outage.
    public init(device: String, start: Timestamp, end: Timestamp? = nil, cause: String? = nil) {
        self.device = device
        self.start = start
        self.end = end
        self.cause = cause
    }

    /// Takes an ``OutageRecord``; a record whose start is unknown cannot be used and is an error.
    public init(_ record: OutageRecord) throws(PowerInputError) {
        guard let start = record.start else {
            throw PowerInputError(
                "outage \(record.id): the start is unknown (no last gasp and no lostAt)")
        }
        self.init(device: record.device, start: start, end: record.end, cause: record.cause)
    }

    /// Checks that the end, if any, is after the start. `label` names the record in the error.
    public func validate(_ label: String) throws(PowerInputError) {
        guard !device.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw PowerInputError("\(label): device is empty")
        }
        if let end, end <= start {
            throw PowerInputError("\(label): end \(end) is not after start \(start)")
        }
    }

    /// Parses CSV with columns `device,start,end[,cause]`.
    public static func parseCSV(_ text: String) throws(PowerInputError) -> [ReliabilityOutage] {
        let table = try CSVTable(parsing: text)
        let deviceColumn = try table.requiredColumn("device")
        let startColumn = try table.requiredColumn("start")
        let endColumn = try table.requiredColumn("end")
        let causeColumn = table.column("cause")
        var result: [ReliabilityOutage] = []
        for (line, fields) in table.rows {
            guard let start = Timestamp(rfc3339: fields[startColumn]) else {
                throw PowerInputError(
                    "line \(line), start: \"\(fields[startColumn].prefix(40))\" is not an RFC 3339 time")
            }
            var end: Timestamp?
            if !fields[endColumn].isEmpty {
                guard let value = Timestamp(rfc3339: fields[endColumn]) else {
                    throw PowerInputError(
                        "line \(line), end: \"\(fields[endColumn].prefix(40))\" is not an RFC 3339 time")
                }
                end = value
            }
            let cause = causeColumn.map { fields[$0] }
            let outage = ReliabilityOutage(
                device: fields[deviceColumn], start: start, end: end,
                cause: cause?.isEmpty == false ? cause : nil)
            try outage.validate("line \(line)")
            result.append(outage)
        }
        return result
    }

    /// Decodes JSON: an array of outages, or `{"outages": [...]}`.
    public static func decodeJSON(_ data: Data) throws(PowerInputError) -> [ReliabilityOutage] {
        struct Wrapped: Decodable { var outages: [ReliabilityOutage] }
        let first = data.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        let outages =
            first == UInt8(ascii: "[")
            ? try GridJSON.decode([ReliabilityOutage].self, from: data, what: "outages")
            : try GridJSON.decode(Wrapped.self, from: data, what: "outages").outages
        for (position, outage) in outages.enumerated() { try outage.validate("outage \(position + 1)") }
        return outages
    }
}

/// IEEE 1366-2012 indices for one scope: the whole system or the customers under one node.
///
/// Every index is nil when the scope has no customers. `nines` is nil when ASAI is 1
/// (`fullyAvailable` true), as −log10(0) is infinite and JSON has no infinity.
public struct ReliabilityIndices: Sendable, Hashable, Codable {
    /// `system`, or the node id.
    public var scope: String
    /// The node's role; nil for the system.
    public var role: FeederRole?
    /// N_T: customers served in the scope.
    public var customers: Int
    /// Sustained interruptions (> 5 min) that reached the scope.
    public var sustainedInterruptions: Int
    /// Momentary interruptions (≤ 5 min) that reached the scope.
    public var momentaryInterruptions: Int
    /// Σ Nᵢ over sustained interruptions.
    public var customersInterrupted: Int
    /// Σ rᵢ·Nᵢ over sustained interruptions, rᵢ in minutes (clipped to the period).
    public var customerMinutes: Double
    /// Σ IMᵢ·Nₘᵢ over momentary interruptions.
    public var momentaryCustomersInterrupted: Int
    /// Σ Nᵢ / N_T.
    public var saifi: Double?
    /// Σ rᵢ·Nᵢ / N_T, minutes.
    public var saidi: Double?
    /// SAIDI / SAIFI, minutes; nil when SAIFI is 0.
    public var caidi: Double?
    /// Σ IMᵢ·Nₘᵢ / N_T.
    public var maifi: Double?
    /// (N_T·T − Σ rᵢ·Nᵢ) / (N_T·T), T and rᵢ in hours.
    public var asai: Double?
    /// −log10(1 − ASAI); nil when ASAI is 1 or undefined.
    public var nines: Double?
    /// ASAI is exactly 1 (no sustained interruption): the nines are infinite.
    public var fullyAvailable: Bool

    /// Creates a value.
    public init(
        scope: String, role: FeederRole?, customers: Int, sustainedInterruptions: Int,
        momentaryInterruptions: Int,
        customersInterrupted: Int, customerMinutes: Double, momentaryCustomersInterrupted: Int,
        periodHours: Double
    ) {
        self.scope = scope
        self.role = role
        self.customers = customers
        self.sustainedInterruptions = sustainedInterruptions
        self.momentaryInterruptions = momentaryInterruptions
        self.customersInterrupted = customersInterrupted
        self.customerMinutes = customerMinutes
        self.momentaryCustomersInterrupted = momentaryCustomersInterrupted
        fullyAvailable = false
        guard customers > 0 else { return }
        let total = Double(customers)
        let saifi = Double(customersInterrupted) / total
        let saidi = customerMinutes / total
        let asai = (total * periodHours - customerMinutes / 60) / (total * periodHours)
        self.saifi = saifi
        self.saidi = saidi
        caidi = saifi > 0 ? saidi / saifi : nil
        maifi = Double(momentaryCustomersInterrupted) / total
        self.asai = asai
        fullyAvailable = asai == 1
        nines = asai < 1 ? -log10(1 - asai) : nil
    }

    /// Encodes every field, writing undefined indices as JSON `null` rather than leaving them out.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scope, forKey: .scope)
        try container.encode(role, forKey: .role)
        try container.encode(customers, forKey: .customers)
        try container.encode(sustainedInterruptions, forKey: .sustainedInterruptions)
        try container.encode(momentaryInterruptions, forKey: .momentaryInterruptions)
        try container.encode(customersInterrupted, forKey: .customersInterrupted)
        try container.encode(customerMinutes, forKey: .customerMinutes)
        try container.encode(momentaryCustomersInterrupted, forKey: .momentaryCustomersInterrupted)
        try container.encode(saifi, forKey: .saifi)
        try container.encode(saidi, forKey: .saidi)
        try container.encode(caidi, forKey: .caidi)
        try container.encode(maifi, forKey: .maifi)
        try container.encode(asai, forKey: .asai)
        try container.encode(nines, forKey: .nines)
        try container.encode(fullyAvailable, forKey: .fullyAvailable)
    }

    /// The least reliable of `candidates` with a defined ASAI: the lowest ASAI; ties broken by
    /// the higher SAIDI, then by the scope id in ascending order.
    public static func leastReliable(_ candidates: [ReliabilityIndices]) -> ReliabilityIndices? {
        let ranked = candidates.compactMap { item in
            item.asai.map { (asai: $0, saidi: item.saidi ?? 0, item: item) }
        }
        return ranked.min { a, b in
            if a.asai != b.asai { return a.asai < b.asai }
            if a.saidi != b.saidi { return a.saidi > b.saidi }
            return a.item.scope < b.item.scope
        }?.item
    }
}

/// IEEE 1366-2012 reliability over one period.
public struct ReliabilityReport: Sendable, Hashable, Codable {
    /// The period start (inclusive).
    public var periodStart: Timestamp
    /// The period end (exclusive).
    public var periodEnd: Timestamp
    /// T, hours.
    public var periodHours: Double
    /// Outages that reached into the period.
    public var outagesCounted: Int
    /// The whole tree.
    public var system: ReliabilityIndices
    /// Each node with role `branch`, input order.
    public var branches: [ReliabilityIndices]
    /// Every node (the customers under it), input order.
    public var nodes: [ReliabilityIndices]
    /// The least reliable branch (see ``ReliabilityIndices/leastReliable(_:)``); nil when no branch has customers.
    public var leastReliableBranch: String?
    /// The least reliable node with customers.
    public var leastReliableNode: String?

    /// Creates a report.
    public init(
        periodStart: Timestamp, periodEnd: Timestamp, periodHours: Double, outagesCounted: Int,
        system: ReliabilityIndices, branches: [ReliabilityIndices], nodes: [ReliabilityIndices],
        leastReliableBranch: String?, leastReliableNode: String?
    ) {
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.periodHours = periodHours
        self.outagesCounted = outagesCounted
        self.system = system
        self.branches = branches
        self.nodes = nodes
        self.leastReliableBranch = leastReliableBranch
        self.leastReliableNode = leastReliableNode
    }
}

extension FeederTree {
    /// The longest momentary interruption, seconds: ≤ 300 s is momentary, > 300 s sustained.
    public static let momentaryLimitSeconds = 300

    /// Computes IEEE 1366 indices over `[periodStart, periodEnd)`.
    ///
    /// Rules:
    /// - An outage at a node interrupts every customer of its subtree.
    /// - Momentary: the whole outage lasted ≤ 5 min (300 s, inclusive); sustained: > 5 min.
    ///   The whole duration decides, not the part inside the period; an open outage's
    ///   duration runs to the period end.
    /// - An outage that straddles a period boundary is clipped to the period: it counts as one
    ///   interruption in each period it overlaps and contributes only its minutes inside.
    ///   An open outage runs to the period end. Outages entirely outside are ignored.
    /// - Outages are counted independently: two overlapping outages over the same customers
    ///   (a branch and a load below it) both count.
    public func reliability(
        outages: [ReliabilityOutage], periodStart: Timestamp, periodEnd: Timestamp
    )
        throws(PowerInputError) -> ReliabilityReport
    {
        guard periodEnd > periodStart else {
            throw PowerInputError(
                "reliability: period end \(periodEnd) is not after its start \(periodStart)")
        }
        let hours = periodEnd.seconds(since: periodStart) / 3600
        struct Counted {
            var device: String
            var minutes: Double
            var sustained: Bool
        }
        var counted: [Counted] = []
        for (position, outage) in outages.enumerated() {
            let label = "outage \(position + 1) at \(outage.device)"
            try outage.validate(label)
            guard node(outage.device) != nil else {
                throw PowerInputError("\(label): device is not in the feeder tree")
            }
            let end = outage.end ?? max(periodEnd, outage.start)
            let clippedStart = max(outage.start, periodStart)
            let clippedEnd = min(end, periodEnd)
            guard clippedEnd > clippedStart else { continue }
            let whole = end.milliseconds - outage.start.milliseconds
            counted.append(
                Counted(
                    device: outage.device,
                    minutes: Double(clippedEnd.milliseconds - clippedStart.milliseconds) / 60_000,
                    sustained: whole > Int64(Self.momentaryLimitSeconds) * 1000))
        }
        var under: [String: Int] = [:]
        var ancestors: [String: Set<String>] = [:]
        for node in nodes {
            under[node.id] = try customers(under: node.id)
            ancestors[node.id] = Set(try upstream(of: node.id))
        }
        // Customers of scope `scope` (nil = system) interrupted by an outage at `device`.
        func interrupted(_ device: String, scope: String?) -> Int {
            guard let scope else { return under[device] ?? 0 }
            if device == scope || ancestors[device]?.contains(scope) == true { return under[device] ?? 0 }
            if ancestors[scope]?.contains(device) == true { return under[scope] ?? 0 }
            return 0
        }
        func indices(scope: String?) -> ReliabilityIndices {
            var sustained = 0
            var momentary = 0
            var customersInterrupted = 0
            var momentaryCustomers = 0
            var minutes = 0.0
            for outage in counted {
                let customers = interrupted(outage.device, scope: scope)
                guard customers > 0 else { continue }
                if outage.sustained {
                    sustained += 1
                    customersInterrupted += customers
                    minutes += outage.minutes * Double(customers)
                } else {
                    momentary += 1
                    momentaryCustomers += customers
                }
            }
            return ReliabilityIndices(
                scope: scope ?? "system", role: scope.flatMap { node($0)?.role },
                customers: scope.map { under[$0] ?? 0 } ?? totalCustomers,
                sustainedInterruptions: sustained,
                momentaryInterruptions: momentary, customersInterrupted: customersInterrupted,
                customerMinutes: minutes,
                momentaryCustomersInterrupted: momentaryCustomers, periodHours: hours)
        }
        let perNode = nodes.map { indices(scope: $0.id) }
        let perBranch = perNode.filter { $0.role == .branch }
        return ReliabilityReport(
            periodStart: periodStart, periodEnd: periodEnd, periodHours: hours,
            outagesCounted: counted.count,
            system: indices(scope: nil), branches: perBranch, nodes: perNode,
            leastReliableBranch: ReliabilityIndices.leastReliable(perBranch)?.scope,
            leastReliableNode: ReliabilityIndices.leastReliable(perNode)?.scope)
    }
}

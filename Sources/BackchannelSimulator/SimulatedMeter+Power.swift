import BackchannelAgent
import BackchannelPower
import BackchannelProtocol
import Foundation

/// Where a simulated device sits in its feeder tree.
public struct GridPlacement: Sendable, Hashable {
    /// The upstream device, nil for a feeder's master IED.
    public var parent: String?
    /// `master`, `branch`, `load`, `generator` or `meter`.
    public var role: String
    /// Customers the device serves (for reliability indices).
    public var customers: Int

    /// Creates a placement.
    public init(parent: String?, role: String, customers: Int) {
        self.parent = parent
        self.role = role
        self.customers = customers
    }
}

extension SimulatedMeter {
    /// The power-application commands:
    /// - `shed {reason?}` / `restore {reason?}`: open / close the load relay (load shedding);
    /// - `switch-supplier {supplier, offerID?, tariff?, reason?}`: bill for another supplier from now on;
    /// - `reduce-consumption {percent?}`: draw `percent` less (default 20; the hub sends
    ///   `{reason, ceilingPerKWh}` and leaves the amount to the device);
    /// - `pq.alert {origin, event, action}`: a power quality event upstream; a generator told
    ///   `disconnect-generator` opens its relay;
    /// - `pq.containment {origin, handledBy}`: a downstream event is being handled there;
    /// - `outage.inject {seconds}`: lose power for `seconds` (simulation);
    /// - `pq.inject {kind: dip|swell|interruption, magnitude, seconds}`: the supply sags, swells
    ///   or drops to `magnitude` per unit for `seconds`; the meter records the half-cycle RMS,
    ///   runs its own detector (IEC 61000-4-30 style, IEEE 1159 classes) and pushes each
    ///   event it detects as a `pq` event.
    func registerPowerHandlers() async {
        let model = self.model
        let agent = self.agent
        let powerLine = self.powerLine
        let role = placement?.role
        await handle("shed") { request in
            let changed = model.setRelay(closed: false)
            if changed { try? await agent.emit(.event, name: "relay.changed", data: ["relay": "open"]) }
            return .succeeded([
                "relay": "open", "changed": .bool(changed), "reason": request.args["reason"] ?? .null,
            ])
        }
        await handle("restore") { request in
            let changed = model.setRelay(closed: true)
            if changed { try? await agent.emit(.event, name: "relay.changed", data: ["relay": "closed"]) }
            return .succeeded([
                "relay": "closed", "changed": .bool(changed), "reason": request.args["reason"] ?? .null,
            ])
        }
        await handle("switch-supplier") { request in
            guard let supplier = request.args["supplier"]?.stringValue, !supplier.isEmpty, supplier.count <= 200 else {
                throw InvalidArguments("switch-supplier needs {\"supplier\": name}")
            }
            let previous = model.supplier
            model.setSupplier(supplier)
            return .succeeded([
                "supplier": .string(supplier), "previous": previous.map { .string($0) } ?? .null,
            ])
        }
        await handle("reduce-consumption") { request in
            let percent = request.args["percent"]?.doubleValue ?? 20
            guard (1...90).contains(percent) else { throw InvalidArguments("percent: must be 1-90") }
            model.setConsumptionFactor(1 - percent / 100)
            return .succeeded(["consumptionFactor": .number(model.consumptionFactor)])
        }
        await handle("pq.alert") { request in
            let origin = request.args["origin"]?.stringValue ?? "?"
            let action = request.args["action"]?.stringValue ?? "pq-alert"
            model.noteAlert("pq.alert:\(origin)")
            var disconnected = false
            if action == "disconnect-generator", role == "generator" {
                disconnected = model.setRelay(closed: false)
            }
            return .succeeded([
                "origin": .string(origin), "action": .string(action), "disconnected": .bool(disconnected),
            ])
        }
        await handle("pq.containment") { request in
            let origin = request.args["origin"]?.stringValue ?? "?"
            model.noteAlert("containment:\(origin)")
            return .succeeded(["origin": .string(origin), "standingBy": true])
        }
        await handle("pq.inject") { request in
            try await Self.injectPQ(request, agent: agent, model: model)
        }
        await handle("outage.inject") { request in
            guard let seconds = request.args["seconds"]?.doubleValue, seconds >= 0.5, seconds <= 3600 else {
                throw InvalidArguments("outage.inject needs {\"seconds\": 0.5-3600}")
            }
            powerLine.lose(for: seconds)
            return .succeeded(["lostFor": .number(seconds)])
        }
    }

    /// Synthesises the requested disturbance at 230 V 50 Hz, detects it, and pushes the events.
    static func injectPQ(_ request: LogicalRequest, agent: Agent, model: MeterModel) async throws -> CommandReply {
        guard let kindText = request.args["kind"]?.stringValue, let kind = PQEventKind(rawValue: kindText) else {
            throw InvalidArguments("pq.inject needs {\"kind\": \"dip\" | \"swell\" | \"interruption\"}")
        }
        let defaultMagnitude = kind == .swell ? 1.2 : kind == .dip ? 0.6 : 0.02
        let magnitude = request.args["magnitude"]?.doubleValue ?? defaultMagnitude
        let seconds = request.args["seconds"]?.doubleValue ?? 0.1
        guard seconds > 0, seconds <= 120 else { throw InvalidArguments("seconds: must be above 0 and at most 120") }
        // Whole half cycles (10 ms at 50 Hz), as the recorder samples them.
        let halfCycles = max(1, (seconds * 100).rounded())
        // The recording ends now: the disturbance has just happened.
        let recorded = 0.1 + halfCycles / 100 + 0.1
        let synthesis = RMSSynthesisRequest(
            kind: kind, magnitudePerUnit: magnitude, durationSeconds: halfCycles / 100, nominalVolts: 230,
            frequencyHz: 50, preSeconds: 0.1, postSeconds: 0.1, start: model.deviceNow().adding(seconds: -recorded))
        let detected: PQDetectionResult
        do {
            detected = try PQEventDetector().detect(try RMSSynthesizer.series(for: synthesis))
        } catch {
            throw InvalidArguments("pq.inject: \(error.message)")
        }
        var labels: [JSONValue] = []
        for event in detected.events {
            let data = try WireJSON.decode(JSONValue.self, from: WireJSON.encode(event))
            try await agent.emit(.event, name: "pq", data: data)
            labels.append(.string(event.classification.label))
        }
        return .succeeded(["events": .array(labels)])
    }
}

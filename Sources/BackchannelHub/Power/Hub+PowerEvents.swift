import BackchannelPower
import BackchannelProtocol
import BackchannelStore
import Foundation
import Logging
import Synchronization

extension Hub {
    /// Tamper: the same identity polling from two addresses within the window.
    func noteContactAddress(_ device: String, at now: Timestamp) {
        guard let address = Self.contactAddress else { return }
        let previous = power.update(device) { latest in
            latest.address = address
            latest.addressAt = now
        }
        guard let lastAddress = previous.address, let lastAt = previous.addressAt, lastAddress != address else {
            return
        }
        var tolerances = TamperTolerances()
        tolerances.dualPresenceSeconds = configuration.power.dualPresenceWindow
        let contacts = [
            DeviceContact(device: device, address: lastAddress, at: lastAt),
            DeviceContact(device: device, address: address, at: now),
        ]
        guard let flag = (try? TamperDetector.dualPresence(contacts, tolerances: tolerances))?.first else { return }
        recordTamperLater(flag)
    }

    /// Tamper: a device's clock offset jumping, from the poll's clock samples.
    func noteClockOffset(_ device: String, offset: Double, at hubTime: Timestamp) {
        let previous = power.update(device) { $0.clock = (offset, hubTime) }
        guard let last = previous.clock, hubTime > last.at else { return }
        var tolerances = TamperTolerances()
        tolerances.clockJumpSeconds = configuration.power.clockJumpTolerance
        // Each sample at its own hub time: the device clock went backwards only if it reads
        // earlier now than it did then.
        let samples = [
            TamperClockSample(device: device, deviceTime: last.at.adding(seconds: last.offset), hubTime: last.at),
            TamperClockSample(device: device, deviceTime: hubTime.adding(seconds: offset), hubTime: hubTime),
        ]
        guard let flag = (try? TamperDetector.clockJumps(samples, tolerances: tolerances))?.first else { return }
        recordTamperLater(flag)
    }

    /// Stores a tamper flag found outside a store transaction (contacts, clock samples).
    private func recordTamperLater(_ flag: TamperFlag) {
        Task {
            do {
                let tenant = try await self.tenant(ofDevice: flag.device) ?? self.configuration.systemTenant
                let document = try Self.tamperDocument(flag, tenant: tenant)
                try await store.putPowerDocuments([document])
                events.publish(
                    .power, at: flag.at, device: flag.device, detail: "tamper.\(flag.kind.rawValue)",
                    data: document.body)
            } catch {
                logger.warning("a tamper flag was not stored", metadata: ["error": "\(error)"])
            }
        }
    }

    static func tamperDocument(_ flag: TamperFlag, tenant: String) throws -> PowerDocument {
        let body = try json(flag)
        return PowerDocument(
            kind: PowerKind.tamper, key: "\(flag.device)/\(flag.kind.rawValue)/\(flag.at.milliseconds)",
            tenant: tenant, device: flag.device, at: flag.at, body: body)
    }

    /// A `meter` (or `billing`) reading: the latest kW for roll-ups; the energy register
    /// (`kWh`) for the register-backwards check, per reading name. A reading that carries
    /// `resetAt` (the time of the meter's last billing reset) explains a drop to a lower value.
    func noteMeterReading(_ device: String, _ item: UplinkItem, tenant: String, at now: Timestamp) -> [PowerDocument] {
        let kW = item.data["kW"]?.doubleValue
        let register = item.data["kWh"]?.doubleValue
        let name = item.name
        let previous = power.update(device) { latest in
            if let kW, kW.isFinite, name == "meter" {
                latest.kW = kW
                latest.kWAt = item.at
            }
            if let register, register.isFinite, item.at >= (latest.registers[name]?.at ?? item.at) {
                latest.registers[name] = (register, item.at)
            }
        }
        guard let register, let last = previous.registers[name], item.at > last.at else { return [] }
        let lastAt = last.at
        let resets = (item.data["resetAt"]?.stringValue).flatMap(Timestamp.init(rfc3339:)).map {
            [RegisterReset(device: device, at: $0)]
        }
        let readings = [
            RegisterReading(device: device, at: lastAt, kWh: last.kWh),
            RegisterReading(device: device, at: item.at, kWh: register),
        ]
        guard let flag = (try? TamperDetector.registerBackwards(readings, resets: resets ?? []))?.first,
            let document = try? Self.tamperDocument(flag, tenant: tenant)
        else { return [] }
        return [document]
    }

    /// A supplier's tariff offer pushed by a supplier device in its poll:
    /// `{supplier, offerID, tariff}` (the tariff in the ``Tariff`` JSON form).
    func offerDocuments(from device: String, _ item: UplinkItem, tenant: String, at now: Timestamp) -> [PowerDocument] {
        do {
            let offer = try WireJSON.decode(SupplierOffer.self, from: WireJSON.encode(item.data))
            return [try Self.offerDocument(offer, tenant: tenant, source: "device:\(device)", at: now)]
        } catch {
            logger.warning("a supplier offer was refused", metadata: ["device": "\(device)", "error": "\(error)"])
            return []
        }
    }

    /// A device that polls again after a last gasp without sending `power.restored` has its
    /// power back: the outage closes at that contact. The poll that carries the last gasp, and
    /// any in the first ``lastGaspGrace`` seconds after it, do not count.
    func closeOutageOnContact(_ device: String, request: PollRequest, at now: Timestamp) async throws {
        guard let openedAt = power.openOutages.withLock({ $0[device] }) else { return }
        guard now.seconds(since: openedAt) > Self.lastGaspGrace,
            !request.uplink.contains(where: { $0.kind == .event && $0.name.hasPrefix("power.") })
        else { return }
        let tenant = try await self.tenant(ofDevice: device) ?? configuration.systemTenant
        try await applyOutageEvent(OutageEvent(kind: .heardFrom, device: device, at: now), tenant: tenant, at: now)
    }

    /// Seconds after a last gasp during which further polls of the dying device are expected.
    static let lastGaspGrace = 10.0

    /// `power.lost` `{at?, cause?}` and `power.restored` `{at?, lostAt?}` events.
    func handleOutageEvent(device: String, _ item: UplinkItem, tenant: String, at now: Timestamp) async throws {
        func time(_ key: String) -> Timestamp? { item.data[key]?.stringValue.flatMap(Timestamp.init(rfc3339:)) }
        let event: OutageEvent
        switch item.name {
        case "power.lost":
            event = OutageEvent(
                kind: .powerLost, device: device, at: time("at") ?? item.at, cause: item.data["cause"]?.stringValue)
        default:
            event = OutageEvent(kind: .powerRestored, device: device, at: time("at") ?? item.at, lostAt: time("lostAt"))
        }
        try await applyOutageEvent(event, tenant: tenant, at: now)
    }

    /// Runs the device's outage tracker (kept in the store) over one event, stores the tracker
    /// and the changed record in one transaction, and tells subscribers.
    private func applyOutageEvent(_ event: OutageEvent, tenant: String, at now: Timestamp) async throws {
        let device = event.device
        var tracker = OutageTracker()
        if let stored = try await store.powerDocument(kind: PowerKind.outageTracker, key: device) {
            do {
                tracker = try WireJSON.decode(OutageTracker.self, from: WireJSON.encode(stored.body))
            } catch {
                logger.error(
                    "a stored outage tracker cannot be read; starting a new one",
                    metadata: ["device": "\(device)", "error": "\(error)"])
            }
        }
        let notification: OutageNotification?
        do {
            notification = try tracker.handle(event)
        } catch {
            logger.warning("an outage event was refused", metadata: ["device": "\(device)", "error": "\(error)"])
            return
        }
        guard let notification else { return }
        let record = notification.record
        let trackerBody = try Self.json(tracker)
        let recordBody = try Self.json(record)
        try await store.putPowerDocuments([
            PowerDocument(
                kind: PowerKind.outageTracker, key: device, tenant: tenant, device: device, at: now, body: trackerBody),
            PowerDocument(
                kind: PowerKind.outage, key: record.id, tenant: tenant, device: device,
                at: record.start ?? record.end ?? now,
                body: recordBody),
        ])
        power.openOutages.withLock { open in
            if record.isOpen { open[device] = now } else { open[device] = nil }
        }
        events.publish(
            .power, at: now, device: device, detail: "outage.\(notification.kind.rawValue)", data: recordBody)
    }
}

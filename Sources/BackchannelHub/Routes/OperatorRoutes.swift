import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Hub {
    /// The operator API under `/v1`. ``OperatorGate`` authenticates every request; each route
    /// then checks the role's permission and the tenant of what it touches.
    func addOperatorRoutes(to router: Router<HubRequestContext>) {
        let api = router.group("v1").add(middleware: OperatorGate(hub: self))
        let bodyLimit = 256 * 1024

        api.get("whoami") { _, context -> Response in
            guard let who = context.principal else { throw HubError.unauthorized() }
            return try jsonResponse(OperatorIdentity(name: who.name, role: who.role, tenant: who.tenant))
        }
        api.post("devices") { request, context -> Response in
            let who = try context.require(.provision)
            var body = try await request.decodeJSON(ProvisionDeviceRequest.self, limit: bodyLimit)
            if let tenant = body.tenant, tenant != who.tenant, !who.isSystemAdmin {
                throw HubError(
                    .forbidden, ErrorCode.forbidden, "only a system-tenant admin may provision into another tenant")
            }
            body.tenant = body.tenant ?? who.tenant
            return try jsonResponse(try await self.provision(body), status: .created)
        }
        api.get("devices") { request, context -> Response in
            let who = try context.require(.readDevices)
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(
                try await self.devices(cursor: request.query("cursor"), limit: limit, tenant: who.tenant))
        }
        api.get("devices/:id") { _, context -> Response in
            let id = try context.pathID()
            try await self.checkDevice(id, try context.require(.readDevices))
            return try jsonResponse(try await self.device(id))
        }
        api.post("devices/:id/token") { _, context -> Response in
            let id = try context.pathID()
            try await self.checkDevice(id, try context.require(.provision))
            return try jsonResponse(try await self.rotateToken(device: id))
        }
        api.post("devices/:id/commands") { request, context -> Response in
            let who = try context.require(.command)
            let device = try context.pathID()
            try await self.checkDevice(device, who)
            let body = try await request.decodeJSON(SubmitCommandRequest.self, limit: bodyLimit)
            let (command, created) = try await self.submit(body, to: device, origin: who.actor)
            return try jsonResponse(command, status: created ? .created : .ok)
        }
        api.get("devices/:id/commands") { request, context -> Response in
            let device = try context.pathID()
            try await self.checkDevice(device, try context.require(.readOperations))
            return try jsonResponse(try await self.commands(device: device, request: request))
        }
        api.get("devices/:id/uplink") { request, context -> Response in
            let device = try context.pathID()
            try await self.checkDevice(device, try context.require(.readData))
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            var kind: UplinkKind?
            if let text = request.query("kind") {
                guard let parsed = UplinkKind(rawValue: text) else {
                    throw HubError.malformed("kind: must be reading or event")
                }
                kind = parsed
            }
            var cursor: Int64?
            if let text = request.query("cursor") {
                guard let parsed = Int64(text), parsed > 0 else {
                    throw HubError.malformed("cursor: not a cursor from this list")
                }
                cursor = parsed
            }
            return try jsonResponse(try await self.uplink(device: device, kind: kind, cursor: cursor, limit: limit))
        }
        api.get("devices/:id/export") { request, context -> Response in
            let device = try context.pathID()
            try await self.checkDevice(device, try context.require(.readData))
            return self.export(try await self.exportQuery(request, device: device))
        }
        api.get("commands") { request, context -> Response in
            let who = try context.require(.readOperations)
            let device = request.query("device")
            if let device { try await self.checkDevice(device, who) }
            return try jsonResponse(try await self.commands(device: device, request: request, tenant: who.tenant))
        }
        api.get("commands/:id") { request, context -> Response in
            let id = try context.pathID()
            try await self.checkCommand(id, try context.require(.readOperations))
            let wait = try request.secondsQuery("wait", range: 0...self.configuration.maxWait) ?? 0
            return try jsonResponse(try await self.command(id, waitingUpTo: wait))
        }
        api.post("commands/:id/cancel") { request, context -> Response in
            let id = try context.pathID()
            try await self.checkCommand(id, try context.require(.command))
            return try jsonResponse(try await self.cancel(id, reason: try await request.cancelReason(limit: bodyLimit)))
        }
        api.get("presence") { request, context -> Response in
            let who = try context.require(.readDevices)
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            var state: InferredPresence?
            if let text = request.query("state") {
                guard let parsed = InferredPresence(rawValue: text) else {
                    throw HubError.malformed("state: must be unknown, online, unavailable or presence-error")
                }
                state = parsed
            }
            var available: Bool?
            if let text = request.query("available") {
                guard let parsed = Bool(text) else { throw HubError.malformed("available: must be true or false") }
                available = parsed
            }
            return try jsonResponse(
                try await self.presencePage(
                    state: state, available: available, cursor: request.query("cursor"), limit: limit,
                    tenant: who.tenant))
        }
        api.get("presence/ws") { _, context -> Response in
            _ = try context.require(.readDevices)
            // Reached only when the WebSocket upgrade was not asked for (the token was accepted).
            throw HubError(.upgradeRequired, ErrorCode.malformed, "open a WebSocket here for presence changes")
        }
        api.get("presence/events") { request, context -> Response in
            let who = try context.require(.readDevices)
            let devices = request.query("device").map { Set($0.split(separator: ",").map(String.init)) }
            let states = request.query("state").map { Set($0.split(separator: ",").map(String.init)) }
            if let states, let bad = states.first(where: { InferredPresence(rawValue: $0) == nil }) {
                throw HubError.malformed("state: '\(bad)' is not unknown, online, unavailable or presence-error")
            }
            return self.eventStream(for: who) { event in
                event.type == .devicePresence && (devices.map { $0.contains(event.device ?? "") } ?? true)
                    && (states.map { $0.contains(event.detail ?? "") } ?? true)
            }
        }
        api.get("devices/:id/presence") { request, context -> Response in
            let device = try context.pathID()
            try await self.checkDevice(device, try context.require(.readDevices))
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(try await self.presenceDetail(device, limit: limit))
        }
        api.post("devices/:id/presence/refresh") { _, context -> Response in
            let device = try context.pathID()
            try await self.checkDevice(device, try context.require(.command))
            return try jsonResponse(try await self.refreshPresence(device))
        }
        api.post("campaigns") { request, context -> Response in
            let who = try context.require(.command)
            let body = try await request.decodeJSON(StartCampaignRequest.self, limit: bodyLimit)
            return try jsonResponse(try await self.startCampaign(body, tenant: who.tenant), status: .created)
        }
        api.get("campaigns") { request, context -> Response in
            let who = try context.require(.readOperations)
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(
                Page(items: try await self.campaigns(limit: limit, tenant: who.tenant), nextCursor: nil))
        }
        api.get("campaigns/:id") { request, context -> Response in
            try await self.checkCampaign(try context.pathID(), try context.require(.readOperations))
            let children = request.query("children").map { $0 == "true" || $0 == "1" } ?? false
            return try jsonResponse(try await self.campaign(try context.pathID(), children: children))
        }
        api.post("campaigns/:id/cancel") { request, context -> Response in
            let id = try context.pathID()
            try await self.checkCampaign(id, try context.require(.command))
            let reason = try await request.cancelReason(limit: bodyLimit)
            if let reason, reason.utf8.count > 1024 { throw HubError.malformed("reason: longer than 1024 bytes") }
            return try jsonResponse(try await self.cancelCampaign(id, reason: reason))
        }
        api.get("alarms/config") { _, context -> Response in
            // Hub-wide: its selectors and escalation lists name devices and people of every tenant.
            let who = try context.require(.readOperations)
            guard who.tenant == self.configuration.systemTenant else {
                throw HubError.hidden(HubError.notFound("alarm settings are kept to the system tenant"))
            }
            return try jsonResponse(self.alarms.configuration)
        }
        api.put("alarms/config") { request, context -> Response in
            _ = try context.require(.hubSettings)
            let body = try await request.decodeJSON(AlarmConfiguration.self, limit: bodyLimit)
            return try jsonResponse(try self.configureAlarms(body))
        }
        api.get("alarms") { request, context -> Response in
            let who = try context.require(.readOperations)
            let all = request.query("all").map { $0 == "true" || $0 == "1" } ?? false
            var items: [Alarm] = []
            for alarm in self.alarms.alarms(includeClosed: all)
            where try await self.tenant(ofDevice: alarm.device) == who.tenant {
                items.append(alarm)
            }
            return try jsonResponse(Page(items: items, nextCursor: nil))
        }
        api.get("alarms/events") { request, context -> Response in
            let who = try context.require(.readOperations)
            // An operator's live subscription is the operator's presence for escalation.
            // The subscriber is present for escalation as itself; a system-tenant admin (who owns
            // the hub-wide escalation lists) may subscribe on behalf of another name.
            let name = request.query("operator") ?? who.name
            if !Identifier.isValid(name, maxBytes: 64) { throw HubError.malformed("operator: not a valid name") }
            if name != who.name && !who.isSystemAdmin {
                throw HubError(
                    .forbidden, ErrorCode.forbidden,
                    "operator: only a system-tenant admin may subscribe as another name")
            }
            self.operatorPresence(name, connected: true)
            return self.eventStream(
                for: who,
                onClose: { self.operatorPresence(name, connected: false) }
            ) { $0.type == .alarm }
        }
        api.get("alarms/:id") { _, context -> Response in
            let alarm = try await self.tenantAlarm(try context.pathID(), try context.require(.readOperations))
            return try jsonResponse(alarm)
        }
        api.post("alarms/:id/ack") { request, context -> Response in
            var request = request
            let who = try context.require(.command)
            let alarm = try await self.tenantAlarm(try context.pathID(), who)
            let body = try await request.collectBody(upTo: bodyLimit)
            if body.readableBytes > 0 {
                // The acknowledging operator is the authenticated one; a body may still name it.
                _ = try await request.decodeJSON(AcknowledgeAlarmRequest.self, limit: bodyLimit)
            }
            return try jsonResponse(try self.acknowledgeAlarm(alarm.id, by: who.name))
        }
        api.get("rendezvous/rules") { _, context -> Response in
            let who = try context.require(.readOperations)
            return try jsonResponse(Page(items: try await self.rendezvousRules(tenant: who.tenant), nextCursor: nil))
        }
        api.post("rendezvous/rules") { request, context -> Response in
            let who = try context.require(.rules)
            let body = try await request.decodeJSON(CreateRendezvousRule.self, limit: bodyLimit)
            return try jsonResponse(try await self.addRendezvousRule(body, tenant: who.tenant), status: .created)
        }
        api.delete("rendezvous/rules/:id") { _, context -> Response in
            let who = try context.require(.rules)
            try await self.deleteRendezvousRule(try context.pathID(), tenant: who.tenant)
            return Response(status: .noContent)
        }
        api.get("events") { request, context -> Response in
            let who = try context.require(.readOperations)
            let device = request.query("device")
            return self.eventStream(for: who) { device == nil || $0.device == device }
        }
        api.get("operators") { _, context -> Response in
            let who = try context.require(.operators)
            return try jsonResponse(Page(items: try await self.operatorList(who), nextCursor: nil))
        }
        api.post("operators") { request, context -> Response in
            let who = try context.require(.operators)
            let body = try await request.decodeJSON(CreateOperatorRequest.self, limit: bodyLimit)
            return try jsonResponse(try await self.createOperator(body, by: who), status: .created)
        }
        api.post("operators/:name/token") { _, context -> Response in
            let who = try context.require(.operators)
            return try jsonResponse(try await self.rotateOperatorToken(try context.pathID("name"), by: who))
        }
        api.delete("operators/:name") { _, context -> Response in
            let who = try context.require(.operators)
            try await self.deleteOperator(try context.pathID("name"), by: who)
            return Response(status: .noContent)
        }
        api.get("audit") { request, context -> Response in
            let who = try context.require(.operators)
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            var cursor: Int64?
            if let text = request.query("cursor") {
                guard let parsed = Int64(text), parsed > 0 else {
                    throw HubError.malformed("cursor: not a cursor from this list")
                }
                cursor = parsed
            }
            return try jsonResponse(try await self.auditPage(who, cursor: cursor, limit: limit))
        }
    }

    /// An alarm of the operator's tenant (404 otherwise).
    private func tenantAlarm(_ id: String, _ who: OperatorPrincipal) async throws(HubError) -> Alarm {
        guard let alarm = alarms.alarm(id) else { throw HubError.notFound("no alarm '\(id)'") }
        guard try await tenant(ofDevice: alarm.device) == who.tenant else {
            throw HubError.hidden(HubError.notFound("no alarm '\(id)'"))
        }
        return alarm
    }

    private func commands(device: String?, request: Request, tenant: String? = nil) async throws -> Page<CommandView> {
        let limit = try request.intQuery("limit", default: 100, range: 1...1000)
        var state: MessageState?
        if let text = request.query("state") {
            guard let parsed = MessageState(rawValue: text.uppercased()) else {
                throw HubError.malformed(
                    "state: must be one of \(MessageState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            state = parsed
        }
        return try await commands(
            device: device, state: state, cursor: request.query("cursor"), limit: limit, tenant: tenant)
    }
}

/// Body of `POST /v1/alarms/{id}/ack`.
struct AcknowledgeAlarmRequest: Codable {
    var `operator`: String
}

extension Request {
    /// The optional `{"reason": …}` body of a cancellation; an empty body is no reason.
    func cancelReason(limit: Int) async throws -> String? {
        let body = try await collectBody(limit: limit)
        guard !body.isEmpty else { return nil }
        do {
            return try WireJSON.decode(CancelCommandRequest.self, from: body).reason
        } catch {
            throw HubError.malformed(WireJSON.describe(error))
        }
    }
}

/// Body of `POST /v1/commands/{id}/cancel` (optional).
struct CancelCommandRequest: Codable {
    var reason: String?
}

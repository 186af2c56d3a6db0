import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Hub {
    /// The operator API under `/v1`, guarded by the operator token.
    func addOperatorRoutes(to router: Router<HubRequestContext>) {
        let api = router.group("v1").add(middleware: OperatorAuthMiddleware(tokenHash: configuration.operatorTokenHash))
        let bodyLimit = 256 * 1024

        api.post("devices") { request, _ -> Response in
            let body = try await request.decodeJSON(ProvisionDeviceRequest.self, limit: bodyLimit)
            return try jsonResponse(try await self.provision(body), status: .created)
        }
        api.get("devices") { request, _ -> Response in
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(try await self.devices(cursor: request.query("cursor"), limit: limit))
        }
        api.get("devices/:id") { _, context -> Response in
            try jsonResponse(try await self.device(try context.pathID()))
        }
        api.post("devices/:id/token") { _, context -> Response in
            try jsonResponse(try await self.rotateToken(device: try context.pathID()))
        }
        api.post("devices/:id/commands") { request, context -> Response in
            let device = try context.pathID()
            let body = try await request.decodeJSON(SubmitCommandRequest.self, limit: bodyLimit)
            let (command, created) = try await self.submit(body, to: device)
            return try jsonResponse(command, status: created ? .created : .ok)
        }
        api.get("devices/:id/commands") { request, context -> Response in
            let device = try context.pathID()
            return try jsonResponse(try await self.commands(device: device, request: request))
        }
        api.get("devices/:id/uplink") { request, context -> Response in
            let device = try context.pathID()
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
            self.export(try await self.exportQuery(request, device: try context.pathID()))
        }
        api.get("commands") { request, _ -> Response in
            try jsonResponse(try await self.commands(device: request.query("device"), request: request))
        }
        api.get("commands/:id") { request, context -> Response in
            let id = try context.pathID()
            let wait = try request.secondsQuery("wait", range: 0...self.configuration.maxWait) ?? 0
            return try jsonResponse(try await self.command(id, waitingUpTo: wait))
        }
        api.post("commands/:id/cancel") { request, context -> Response in
            let id = try context.pathID()
            return try jsonResponse(try await self.cancel(id, reason: try await request.cancelReason(limit: bodyLimit)))
        }
        api.get("presence") { request, _ -> Response in
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
                    state: state, available: available, cursor: request.query("cursor"), limit: limit))
        }
        api.get("presence/ws") { _, _ -> Response in
            // Reached only when the WebSocket upgrade was not asked for (the token was accepted).
            throw HubError(.upgradeRequired, ErrorCode.malformed, "open a WebSocket here for presence changes")
        }
        api.get("presence/events") { request, _ -> Response in
            let devices = request.query("device").map { Set($0.split(separator: ",").map(String.init)) }
            let states = request.query("state").map { Set($0.split(separator: ",").map(String.init)) }
            if let states, let bad = states.first(where: { InferredPresence(rawValue: $0) == nil }) {
                throw HubError.malformed("state: '\(bad)' is not unknown, online, unavailable or presence-error")
            }
            return self.eventStream { event in
                event.type == .devicePresence && (devices.map { $0.contains(event.device ?? "") } ?? true)
                    && (states.map { $0.contains(event.detail ?? "") } ?? true)
            }
        }
        api.get("devices/:id/presence") { request, context -> Response in
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(try await self.presenceDetail(try context.pathID(), limit: limit))
        }
        api.post("devices/:id/presence/refresh") { _, context -> Response in
            try jsonResponse(try await self.refreshPresence(try context.pathID()))
        }
        api.post("campaigns") { request, _ -> Response in
            let body = try await request.decodeJSON(StartCampaignRequest.self, limit: bodyLimit)
            return try jsonResponse(try await self.startCampaign(body), status: .created)
        }
        api.get("campaigns") { request, _ -> Response in
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(Page(items: try await self.campaigns(limit: limit), nextCursor: nil))
        }
        api.get("campaigns/:id") { request, context -> Response in
            let children = request.query("children").map { $0 == "true" || $0 == "1" } ?? false
            return try jsonResponse(try await self.campaign(try context.pathID(), children: children))
        }
        api.post("campaigns/:id/cancel") { request, context -> Response in
            let id = try context.pathID()
            let reason = try await request.cancelReason(limit: bodyLimit)
            if let reason, reason.utf8.count > 1024 { throw HubError.malformed("reason: longer than 1024 bytes") }
            return try jsonResponse(try await self.cancelCampaign(id, reason: reason))
        }
        api.get("alarms/config") { _, _ -> Response in try jsonResponse(self.alarms.configuration) }
        api.put("alarms/config") { request, _ -> Response in
            let body = try await request.decodeJSON(AlarmConfiguration.self, limit: bodyLimit)
            return try jsonResponse(try self.configureAlarms(body))
        }
        api.get("alarms") { request, _ -> Response in
            let all = request.query("all").map { $0 == "true" || $0 == "1" } ?? false
            return try jsonResponse(Page(items: self.alarms.alarms(includeClosed: all), nextCursor: nil))
        }
        api.get("alarms/events") { request, _ -> Response in
            // An operator's live subscription is the operator's presence for escalation.
            let name = request.query("operator")
            if let name, !Identifier.isValid(name, maxBytes: 64) {
                throw HubError.malformed("operator: not a valid name")
            }
            if let name { self.operatorPresence(name, connected: true) }
            return self.eventStream(onClose: {
                if let name { self.operatorPresence(name, connected: false) }
            }) { $0.type == .alarm }
        }
        api.get("alarms/:id") { _, context -> Response in
            let id = try context.pathID()
            guard let alarm = self.alarms.alarm(id) else { throw HubError.notFound("no alarm '\(id)'") }
            return try jsonResponse(alarm)
        }
        api.post("alarms/:id/ack") { request, context -> Response in
            let body = try await request.decodeJSON(AcknowledgeAlarmRequest.self, limit: bodyLimit)
            return try jsonResponse(try self.acknowledgeAlarm(try context.pathID(), by: body.operator))
        }
        api.get("rendezvous/rules") { _, _ -> Response in
            try jsonResponse(Page(items: try await self.rendezvousRules(), nextCursor: nil))
        }
        api.post("rendezvous/rules") { request, _ -> Response in
            let body = try await request.decodeJSON(CreateRendezvousRule.self, limit: bodyLimit)
            return try jsonResponse(try await self.addRendezvousRule(body), status: .created)
        }
        api.delete("rendezvous/rules/:id") { _, context -> Response in
            try await self.deleteRendezvousRule(try context.pathID())
            return Response(status: .noContent)
        }
        api.get("events") { request, _ -> Response in
            self.eventStream(device: request.query("device"))
        }
    }

    private func commands(device: String?, request: Request) async throws -> Page<CommandView> {
        let limit = try request.intQuery("limit", default: 100, range: 1...1000)
        var state: MessageState?
        if let text = request.query("state") {
            guard let parsed = MessageState(rawValue: text.uppercased()) else {
                throw HubError.malformed(
                    "state: must be one of \(MessageState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            state = parsed
        }
        return try await commands(device: device, state: state, cursor: request.query("cursor"), limit: limit)
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

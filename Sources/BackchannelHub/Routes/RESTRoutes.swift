import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A reading or event posted to the REST binding: an uplink item without its kind (the URI names it).
struct RESTUplink: Codable {
    var id: String
    var name: String
    var at: Timestamp
    var data: JSONValue
}

/// The body of `POST /v1/rest/{device}/requests/{id}/result`: a logical result without its id.
struct RESTResult: Codable {
    var status: ResultStatus
    var code: String?
    var retryable: Bool?
    var detail: String?
    var data: JSONValue?
    var finishedAt: Timestamp?
}

extension Hub {
    /// The REST binding for devices: the URI names the function. Every answer is a poll
    /// response carrying the work waiting for the device, so the piggyback holds here too.
    ///
    /// Calls carry no sequence number: retrying one is safe because uplink ids, results and
    /// acks are idempotent, and requests delivered in a lost answer are delivered again when
    /// their lease lapses.
    func addRESTRoutes(to router: Router<HubRequestContext>) {
        let rest = router.group("v1/rest")
        rest.post(":id/readings") { request, context -> Response in
            try await self.restUplink(request, context, kind: .reading)
        }
        rest.post(":id/events") { request, context -> Response in
            try await self.restUplink(request, context, kind: .event)
        }
        rest.get(":id/requests") { request, context -> Response in
            try await self.restExchange(request, context) { _ in }
        }
        rest.post(":id/requests/:request/ack") { request, context -> Response in
            let id = try context.pathID("request")
            return try await self.restExchange(request, context) { $0.acks = [id] }
        }
        rest.post(":id/requests/:request/result") { request, context -> Response in
            let id = try context.pathID("request")
            let body = try await request.decodeJSON(RESTResult.self, limit: self.configuration.maxBodyBytes)
            let result = LogicalResult(
                id: id, status: body.status, code: body.code, retryable: body.retryable, detail: body.detail,
                data: body.data, finishedAt: body.finishedAt)
            return try await self.restExchange(request, context) { poll in
                poll.acks = [id]
                poll.results = [result]
            }
        }
        rest.post(":id/peer-requests") { request, context -> Response in
            var body = try await request.decodeJSON(PeerRequest.self, limit: self.configuration.maxBodyBytes)
            body.envelope = nil  // only the SOAP binding carries envelopes
            return try await self.restExchange(request, context) { $0.requests = [body] }
        }
        rest.get(":id/peer-requests/:ref") { request, context -> Response in
            let device = try context.pathID()
            try await self.authenticateDevice(device, credential: await self.deviceCredential(request, context))
            return try jsonResponse(try await self.sentRequest(try context.pathID("ref"), from: device))
        }
        rest.post(":id/replies/:reply/ack") { request, context -> Response in
            let id = try context.pathID("reply")
            return try await self.restExchange(request, context) { $0.replyAcks = [id] }
        }
    }

    private func restUplink(_ request: Request, _ context: HubRequestContext, kind: UplinkKind) async throws
        -> Response
    {
        let data = try await request.collectBody(limit: configuration.maxBodyBytes)
        let type = request.headers[.contentType]?.lowercased() ?? ""
        if type.hasPrefix("application/xml") || type.hasPrefix("text/xml") {
            // Self-describing XML: <readings><reading id="…" at="…"><name>…values…</name></reading>…
            let uplink: [UplinkItem]
            do {
                uplink = try XMLExport.items(in: try XMLReader.parse(data, limits: configuration.xmlLimits), kind: kind)
            } catch {
                throw error.isTooLarge
                    ? HubError.tooLarge(limit: configuration.maxBodyBytes)
                    : HubError.malformed(
                        error.isDoctypeForbidden ? "XML: DOCTYPE is not allowed" : "XML: \(error.description)")
            }
            return try await restExchange(request, context) { $0.uplink = uplink }
        }
        let items: [RESTUplink]
        do {
            if data.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) == UInt8(ascii: "[") {
                items = try WireJSON.decode([RESTUplink].self, from: data)
            } else {
                items = [try WireJSON.decode(RESTUplink.self, from: data)]
            }
        } catch {
            throw HubError.malformed(WireJSON.describe(error))
        }
        return try await restExchange(request, context) { poll in
            poll.uplink = items.map { UplinkItem(id: $0.id, kind: kind, name: $0.name, at: $0.at, data: $0.data) }
        }
    }

    /// Runs one unsequenced exchange for the device in the path and answers with the poll response.
    private func restExchange(
        _ request: Request, _ context: HubRequestContext, _ fill: (inout PollRequest) -> Void
    ) async throws -> Response {
        let device = try context.pathID()
        let accept = try request.intQuery("accept", default: PollRequest.defaultAccept, range: 0...1000)
        // Capped at the hub's longest hold, as for JSON polls (a longer wait is not an error).
        let wait = min(try request.secondsQuery("wait", range: 0...86400) ?? 0, configuration.maxWait)
        var poll = PollRequest(device: device, seq: 0, sentAt: clock.now(), accept: accept, wait: wait)
        fill(&poll)
        let credential = try await deviceCredential(request, context)
        let body = try await Hub.$contactAddress.withValue(context.remoteAddress) {
            try await self.poll(poll, requestHash: "", credential: credential, sequenced: false)
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Checks a device's bearer token (for REST reads that are not exchanges).
    func authenticateDevice(_ device: String, authorization: String?) async throws(HubError) {
        try await authenticateDevice(device, credential: .bearer(authorization))
    }

    /// Checks a device's credential (for REST reads that are not exchanges, downloads, sockets).
    func authenticateDevice(_ device: String, credential: DeviceCredential) async throws(HubError) {
        let session: DeviceSession?
        do {
            session = try await directory.session(device, now: clock.now(), burst: configuration.devicePollBurst)
        } catch {
            throw storeFailure(error)
        }
        guard let session else { throw HubError.unknownDevice(device) }
        try credential.authenticate(device, session: session, systemTenant: configuration.systemTenant)
    }
}

public import AsyncHTTPClient
public import BackchannelProtocol
public import Foundation
import NIOCore
import NIOHTTP1

/// A client of the hub's operator API (`/v1/...`), used by the CLI and the simulator.
public final class OperatorClient: Sendable {
    /// The hub's base URL.
    public let hubURL: String
    private let token: String?
    private let http: HTTPClient
    private let ownsClient: Bool

    /// Creates a client. Pass `http` to share a connection pool; otherwise the client owns one
    /// and ``shutdown()`` closes it.
    public init(hubURL: String, token: String?, http: HTTPClient? = nil) {
        var url = hubURL
        while url.hasSuffix("/") { url.removeLast() }
        self.hubURL = url
        self.token = token
        if let http {
            self.http = http
            self.ownsClient = false
        } else {
            var configuration = HTTPClient.Configuration()
            configuration.timeout.connect = .seconds(10)
            self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            self.ownsClient = true
        }
    }

    /// Closes the connection pool if this client owns it.
    public func shutdown() async throws {
        if ownsClient { try await http.shutdown() }
    }

    // MARK: Devices

    /// Provisions a device; the answer carries its token.
    public func provision(_ request: ProvisionDeviceRequest) async throws -> ProvisionedDevice {
        try await call(.POST, "/v1/devices", body: request)
    }

    /// Issues a new token for a device.
    public func rotateToken(device: String) async throws -> ProvisionedDevice {
        try await call(.POST, "/v1/devices/\(escape(device))/token", body: Optional<String>.none)
    }

    /// One page of devices.
    public func devices(cursor: String? = nil, limit: Int = 100) async throws -> Page<DeviceView> {
        try await call(.GET, "/v1/devices", query: ["cursor": cursor, "limit": String(limit)])
    }

    /// Every device, following pagination.
    public func allDevices() async throws -> [DeviceView] {
        var all: [DeviceView] = []
        var cursor: String?
        repeat {
            let page = try await devices(cursor: cursor, limit: 1000)
            all += page.items
            cursor = page.nextCursor
        } while cursor != nil
        return all
    }

    /// One device.
    public func device(_ id: String) async throws -> DeviceView {
        try await call(.GET, "/v1/devices/\(escape(id))")
    }

    // MARK: Commands

    /// Submits a command.
    public func submit(_ request: SubmitCommandRequest, to device: String) async throws -> CommandView {
        try await call(.POST, "/v1/devices/\(escape(device))/commands", body: request)
    }

    /// A command with history; with `wait`, the hub holds the answer until the command is
    /// terminal or the wait ends.
    public func command(_ id: String, wait: Double? = nil) async throws -> CommandView {
        try await call(
            .GET, "/v1/commands/\(escape(id))", query: ["wait": wait.map { String($0) }], timeout: (wait ?? 0) + 30)
    }

    /// One page of commands, newest first.
    public func commands(
        device: String? = nil, state: MessageState? = nil, cursor: String? = nil, limit: Int = 100
    ) async throws -> Page<CommandView> {
        try await call(
            .GET, "/v1/commands",
            query: ["device": device, "state": state?.rawValue, "cursor": cursor, "limit": String(limit)]
        )
    }

    /// Cancels a command.
    public func cancel(_ id: String, reason: String? = nil) async throws -> CommandView {
        try await call(.POST, "/v1/commands/\(escape(id))/cancel", body: ["reason": reason])
    }

    /// One page of a device's readings and events, newest first.
    public func uplink(
        device: String, kind: UplinkKind? = nil, cursor: String? = nil, limit: Int = 100
    ) async throws -> Page<UplinkView> {
        try await call(
            .GET, "/v1/devices/\(escape(device))/uplink",
            query: ["kind": kind?.rawValue, "cursor": cursor, "limit": String(limit)]
        )
    }

    // MARK: Alarms

    /// Replaces the alarm rules and escalation lists (`body` is the JSON configuration).
    public func setAlarmConfiguration(_ body: JSONValue) async throws -> JSONValue {
        try await call(.PUT, "/v1/alarms/config", body: body)
    }

    /// The alarm rules and escalation lists.
    public func alarmConfiguration() async throws -> JSONValue { try await call(.GET, "/v1/alarms/config") }

    /// Open alarms (or every alarm kept, with `all`).
    public func alarms(all: Bool = false) async throws -> [JSONValue] {
        let page: Page<JSONValue> = try await call(.GET, "/v1/alarms", query: ["all": all ? "true" : nil])
        return page.items
    }

    /// Acknowledges an alarm as `operator`.
    public func acknowledgeAlarm(_ id: String, operator name: String) async throws -> JSONValue {
        try await call(.POST, "/v1/alarms/\(escape(id))/ack", body: ["operator": name])
    }

    /// Alarm changes, live; with `operator`, that operator is present while the stream is open.
    public func alarmEvents(operator name: String?) -> AsyncThrowingStream<HubEvent, any Error> {
        events(path: "/v1/alarms/events", query: ["operator": name])
    }

    // MARK: Firmware artifacts

    /// Uploads a firmware artifact; the hub checks it against `sha256` when given.
    public func uploadArtifact(_ data: Data, name: String?, sha256: String? = nil) async throws -> ArtifactInfoView {
        var request = HTTPClientRequest(url: url("/v1/artifacts", query: ["name": name, "sha256": sha256]))
        request.method = .POST
        authorize(&request)
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .bytes(ByteBuffer(bytes: data))
        let response = try await http.execute(request, timeout: .seconds(600))
        let body = Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw OperatorClientError(
                status: Int(response.status.code), body: try? WireJSON.decode(ErrorBody.self, from: body))
        }
        return try WireJSON.decode(ArtifactInfoView.self, from: body)
    }

    /// Every artifact, oldest first.
    public func artifacts() async throws -> [ArtifactInfoView] {
        let page: Page<ArtifactInfoView> = try await call(.GET, "/v1/artifacts")
        return page.items
    }

    // MARK: Campaigns

    /// Starts a campaign.
    public func startCampaign(_ request: StartCampaignRequest) async throws -> CampaignView {
        try await call(.POST, "/v1/campaigns", body: request)
    }

    /// A campaign with its counts (and each device's command with `children`).
    public func campaign(_ id: String, children: Bool = false) async throws -> CampaignView {
        try await call(.GET, "/v1/campaigns/\(escape(id))", query: ["children": children ? "true" : nil])
    }

    /// Recent campaigns, newest first.
    public func campaigns(limit: Int = 100) async throws -> [CampaignView] {
        let page: Page<CampaignView> = try await call(.GET, "/v1/campaigns", query: ["limit": String(limit)])
        return page.items
    }

    /// Cancels a running campaign.
    public func cancelCampaign(_ id: String, reason: String? = nil) async throws -> CampaignView {
        try await call(.POST, "/v1/campaigns/\(escape(id))/cancel", body: ["reason": reason])
    }

    // MARK: Rendezvous

    /// Every rendezvous rule.
    public func rendezvousRules() async throws -> [RendezvousRule] {
        let page: Page<RendezvousRule> = try await call(.GET, "/v1/rendezvous/rules")
        return page.items
    }

    /// Lets `from` send `commands` to `to` through the hub.
    public func addRendezvousRule(_ rule: CreateRendezvousRule) async throws -> RendezvousRule {
        try await call(.POST, "/v1/rendezvous/rules", body: rule)
    }

    /// Deletes a rendezvous rule.
    public func deleteRendezvousRule(_ id: String) async throws {
        let (status, data) = try await raw(.DELETE, "/v1/rendezvous/rules/\(escape(id))", body: nil, timeout: 30)
        guard (200..<300).contains(status) else {
            throw OperatorClientError(status: status, body: try? WireJSON.decode(ErrorBody.self, from: data))
        }
    }

    // MARK: Exports

    /// Streams a device's readings or events over a time range as CSV or XML, handing each
    /// chunk to `sink` as it arrives. `kind` nil exports both. Returns the bytes received.
    @discardableResult
    public func export(
        device: String, format: ExportFormat, kind: UplinkKind?, from: Timestamp?, to: Timestamp?,
        timeout: Double = 3600, sink: (Data) async throws -> Void
    ) async throws -> Int {
        var request = HTTPClientRequest(
            url: url(
                "/v1/devices/\(escape(device))/export",
                query: [
                    "format": format.rawValue, "kind": kind?.rawValue ?? "all", "from": from?.description,
                    "to": to?.description,
                ]))
        authorize(&request)
        let response = try await http.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
        guard response.status == .ok else {
            let buffer = try await response.body.collect(upTo: 1 << 20)
            throw OperatorClientError(
                status: Int(response.status.code),
                body: try? WireJSON.decode(ErrorBody.self, from: Data(buffer.readableBytesView)))
        }
        var total = 0
        for try await chunk in response.body {
            total += chunk.readableBytes
            try await sink(Data(chunk.readableBytesView))
        }
        return total
    }

    /// The Prometheus metrics text.
    public func metrics() async throws -> String {
        let (status, data) = try await raw(.GET, "/metrics", body: nil, timeout: 30)
        guard status == 200 else {
            throw OperatorClientError(status: status, body: try? WireJSON.decode(ErrorBody.self, from: data))
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Live hub events (server-sent events from `/v1/events`), optionally for one device.
    public func events(device: String? = nil) -> AsyncThrowingStream<HubEvent, any Error> {
        events(path: "/v1/events", query: ["device": device])
    }

    /// Live presence changes (`/v1/presence/events`), optionally for some devices or states.
    public func presenceEvents(devices: [String] = [], states: [InferredPresence] = [])
        -> AsyncThrowingStream<HubEvent, any Error>
    {
        events(
            path: "/v1/presence/events",
            query: [
                "device": devices.isEmpty ? nil : devices.joined(separator: ","),
                "state": states.isEmpty ? nil : states.map(\.rawValue).joined(separator: ","),
            ])
    }

    // MARK: Presence

    /// A page of devices' presence.
    public func presence(
        state: InferredPresence? = nil, available: Bool? = nil, cursor: String? = nil, limit: Int = 1000
    ) async throws -> Page<PresenceView> {
        try await call(
            .GET, "/v1/presence",
            query: [
                "state": state?.rawValue, "available": available.map { String($0) }, "cursor": cursor,
                "limit": String(limit),
            ])
    }

    /// One device's presence with its history.
    public func presenceDetail(_ device: String, limit: Int = 20) async throws -> PresenceDetailView {
        try await call(.GET, "/v1/devices/\(escape(device))/presence", query: ["limit": String(limit)])
    }

    /// Asks a device to declare its presence in its next poll.
    public func refreshPresence(_ device: String) async throws -> PresenceView {
        try await call(.POST, "/v1/devices/\(escape(device))/presence/refresh", body: Optional<String>.none)
    }

    private func events(path: String, query: [String: String?]) -> AsyncThrowingStream<HubEvent, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var request = HTTPClientRequest(url: url(path, query: query))
                    request.method = .GET
                    authorize(&request)
                    let response = try await http.execute(request, timeout: .hours(24 * 365))
                    guard response.status == .ok else {
                        let body = try await response.body.collect(upTo: 1 << 20)
                        throw OperatorClientError(
                            status: Int(response.status.code),
                            body: try? WireJSON.decode(ErrorBody.self, from: Data(body.readableBytesView))
                        )
                    }
                    var pending = ""
                    for try await chunk in response.body {
                        pending += String(buffer: chunk)
                        while let range = pending.range(of: "\n\n") {
                            let frame = pending[pending.startIndex..<range.lowerBound]
                            pending = String(pending[range.upperBound...])
                            for line in frame.split(separator: "\n") where line.hasPrefix("data: ") {
                                if let event = try? WireJSON.decode(HubEvent.self, from: Data(line.dropFirst(6).utf8)) {
                                    continuation.yield(event)
                                }
                            }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: Plumbing

    func call<Response: Decodable>(
        _ method: HTTPMethod, _ path: String, query: [String: String?] = [:], timeout: Double = 30
    ) async throws -> Response {
        try await call(method, path, query: query, body: Optional<String>.none, timeout: timeout)
    }

    func call<Body: Encodable, Response: Decodable>(
        _ method: HTTPMethod, _ path: String, query: [String: String?] = [:], body: Body?, timeout: Double = 30
    ) async throws -> Response {
        let encoded = try body.map { try WireJSON.encode($0) }
        let (status, data) = try await raw(
            method, url(path, query: query), body: encoded, timeout: timeout, absolute: true)
        guard (200..<300).contains(status) else {
            throw OperatorClientError(status: status, body: try? WireJSON.decode(ErrorBody.self, from: data))
        }
        return try WireJSON.decode(Response.self, from: data)
    }

    /// One request. A 429 (the hub's per-operator rate limit, refused before anything was done)
    /// is retried after its `Retry-After`, up to 8 times, so a client going faster than its rate
    /// slows down instead of failing.
    func raw(
        _ method: HTTPMethod, _ path: String, body: Data?, timeout: Double, absolute: Bool = false
    ) async throws -> (Int, Data) {
        var request = HTTPClientRequest(url: absolute ? path : hubURL + path)
        request.method = method
        authorize(&request)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        var retries = 0
        while true {
            let response = try await http.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            let buffer = try await response.body.collect(upTo: 64 << 20)
            let status = Int(response.status.code)
            guard status == 429, retries < 8 else { return (status, Data(buffer.readableBytesView)) }
            retries += 1
            let wait = response.headers.first(name: "Retry-After").flatMap(Double.init) ?? 1
            try await Task.sleep(for: .milliseconds(Int64(min(max(wait, 0.05), 30) * 1000)))
        }
    }

    private func authorize(_ request: inout HTTPClientRequest) {
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    }

    func url(_ path: String, query: [String: String?]) -> String {
        let items = query.compactMap { key, value in value.map { "\(key)=\(escape($0))" } }.sorted()
        return hubURL + path + (items.isEmpty ? "" : "?" + items.joined(separator: "&"))
    }

    func escape(_ text: String) -> String {
        text.addingPercentEncoding(
            withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=/?+"))) ?? text
    }
}

/// The hub answered an operator call with an error.
public struct OperatorClientError: Error, Sendable, CustomStringConvertible {
    /// HTTP status.
    public var status: Int
    /// The error body, when the hub sent one.
    public var body: ErrorBody?

    /// Creates the error.
    public init(status: Int, body: ErrorBody?) {
        self.status = status
        self.body = body
    }

    public var description: String {
        if let body { return "\(body.message) (HTTP \(status), \(body.code))" }
        return "HTTP \(status)"
    }
}

public import BackchannelProtocol
import NIOHTTP1

extension OperatorClient {
    /// `GET /v1/whoami`: the operator behind the token.
    public func whoami() async throws -> OperatorIdentity { try await call(.GET, "/v1/whoami") }

    /// `GET /v1/operators`: the tenant's operators.
    public func operators() async throws -> [OperatorView] {
        let page: Page<OperatorView> = try await call(.GET, "/v1/operators")
        return page.items
    }

    /// `POST /v1/operators`: creates an operator; the answer holds its token, shown once.
    public func createOperator(_ request: CreateOperatorRequest) async throws -> OperatorCredential {
        try await call(.POST, "/v1/operators", body: request)
    }

    /// `POST /v1/operators/{name}/token`: a new token; the old one stops working.
    public func rotateOperatorToken(_ name: String) async throws -> OperatorCredential {
        try await call(.POST, "/v1/operators/\(escape(name))/token", body: Optional<String>.none)
    }

    /// `DELETE /v1/operators/{name}`.
    public func deleteOperator(_ name: String) async throws {
        let (status, data) = try await raw(.DELETE, "/v1/operators/\(escape(name))", body: nil, timeout: 30)
        guard (200..<300).contains(status) else {
            throw OperatorClientError(status: status, body: try? WireJSON.decode(ErrorBody.self, from: data))
        }
    }

    /// `GET /v1/audit`: the tenant's audit log, newest first.
    public func audit(cursor: String? = nil, limit: Int = 100) async throws -> Page<AuditEntry> {
        try await call(.GET, "/v1/audit", query: ["cursor": cursor, "limit": String(limit)])
    }
}

public import BackchannelProtocol
import BackchannelStore
import HTTPTypes
import Synchronization

/// Tenant isolation: every lookup an operator makes goes through one of these checks. A record
/// of another tenant is answered exactly as a record that does not exist (404), so an operator
/// cannot even learn which ids another tenant uses.
extension Hub {
    /// The tenant of a device, or nil when it does not exist.
    func tenant(ofDevice id: String) async throws(HubError) -> String? {
        if let known = deviceTenants.withLock({ $0[id] }) { return known }
        do {
            guard let record = try await store.device(id: id) else { return nil }
            deviceTenants.withLock { cache in
                if cache.count > 1_000_000 { cache.removeAll(keepingCapacity: true) }
                cache[id] = record.tenant
            }
            return record.tenant
        } catch {
            throw storeFailure(error)
        }
    }

    /// Fails with 404 unless the device exists and belongs to the operator's tenant.
    func checkDevice(_ id: String, _ who: OperatorPrincipal) async throws(HubError) {
        guard try await tenant(ofDevice: id) == who.tenant else {
            throw HubError.hidden(HubError.unknownDevice(id))
        }
    }

    /// Fails with 404 unless the command exists and its device belongs to the operator's tenant.
    func checkCommand(_ id: String, _ who: OperatorPrincipal) async throws(HubError) {
        let record: CommandRecord?
        do {
            record = try await store.command(id: id)
        } catch {
            throw storeFailure(error)
        }
        guard let record, try await tenant(ofDevice: record.device) == who.tenant else {
            throw HubError.hidden(HubError.notFound("no command '\(id)'"))
        }
    }

    /// Fails with 404 unless the campaign exists and belongs to the operator's tenant.
    func checkCampaign(_ id: String, _ who: OperatorPrincipal) async throws(HubError) {
        let record: CampaignRecord?
        do {
            record = try await store.campaign(id: id)
        } catch {
            throw storeFailure(error)
        }
        guard let record, record.tenant == who.tenant else {
            throw HubError.hidden(HubError.notFound("no campaign '\(id)'"))
        }
    }

    /// Whether an event concerns the tenant. Events about no device or campaign are hub-wide and
    /// reach only the system tenant.
    func event(_ event: HubEvent, belongsTo tenant: String) async -> Bool {
        if let device = event.device {
            return (try? await self.tenant(ofDevice: device)) == tenant
        }
        if event.type == .campaign, let id = event.detail?.split(separator: " ").first {
            return (try? await store.campaign(id: String(id)))?.tenant == tenant
        }
        return tenant == configuration.systemTenant
    }

    // MARK: Operators

    /// Creates an operator and returns its token (shown only here).
    public func createOperator(
        _ request: CreateOperatorRequest, by who: OperatorPrincipal
    ) async throws(HubError) -> OperatorCredential {
        guard Identifier.isValid(request.name, maxBytes: 64), request.name != "root" else {
            throw HubError.malformed("name: must be 1-64 characters of A-Z a-z 0-9 . _ : - (and not 'root')")
        }
        let tenant = request.tenant ?? who.tenant
        guard Identifier.isValid(tenant, maxBytes: 64) else {
            throw HubError.malformed("tenant: must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        }
        if tenant != who.tenant && !who.isSystemAdmin {
            throw HubError(.forbidden, ErrorCode.forbidden, "only a system-tenant admin may create operators elsewhere")
        }
        let token = OperatorDirectory.makeToken(for: request.name)
        let record = OperatorRecord(
            name: request.name, tenant: tenant, role: request.role, tokenHash: Credentials.hash(token),
            createdAt: clock.now())
        do {
            try await store.insertOperator(record)
        } catch let error as StoreError where error.isConflict {
            throw HubError.conflict("operator '\(request.name)' already exists")
        } catch {
            throw storeFailure(error)
        }
        operators.invalidate(request.name)
        return OperatorCredential(operator: record.view, token: token)
    }

    /// The tenant's operators.
    public func operatorList(_ who: OperatorPrincipal) async throws(HubError) -> [OperatorView] {
        do {
            return try await store.operators(tenant: who.tenant).map(\.view)
        } catch {
            throw storeFailure(error)
        }
    }

    private func tenantOperator(_ name: String, _ who: OperatorPrincipal) async throws(HubError) -> OperatorRecord {
        let record: OperatorRecord?
        do {
            record = try await store.operatorRecord(name: name)
        } catch {
            throw storeFailure(error)
        }
        guard let record, record.tenant == who.tenant else {
            throw HubError.hidden(HubError.notFound("no operator '\(name)'"))
        }
        return record
    }

    /// Replaces an operator's token; the old one stops working at once.
    public func rotateOperatorToken(_ name: String, by who: OperatorPrincipal) async throws(HubError)
        -> OperatorCredential
    {
        let record = try await tenantOperator(name, who)
        let token = OperatorDirectory.makeToken(for: name)
        do {
            guard try await store.setOperatorTokenHash(Credentials.hash(token), operator: name) else {
                throw HubError.notFound("no operator '\(name)'")
            }
        } catch {
            throw storeFailure(error)
        }
        operators.invalidate(name)
        return OperatorCredential(operator: record.view, token: token)
    }

    /// Deletes an operator; its token stops working at once.
    public func deleteOperator(_ name: String, by who: OperatorPrincipal) async throws(HubError) {
        _ = try await tenantOperator(name, who)
        guard name != who.name else { throw HubError.conflict("an operator cannot delete itself") }
        do {
            _ = try await store.deleteOperator(name: name)
        } catch {
            throw storeFailure(error)
        }
        operators.invalidate(name)
    }

    /// The tenant's audit entries, newest first.
    public func auditPage(_ who: OperatorPrincipal, cursor: Int64?, limit: Int) async throws(HubError)
        -> Page<AuditEntry>
    {
        await audit.flush(at: clock.now())
        do {
            let entries = try await store.audit(tenant: who.tenant, before: cursor, limit: limit + 1)
            let items = Array(entries.prefix(limit))
            return Page(items: items, nextCursor: entries.count > limit ? items.last.map { String($0.seq) } : nil)
        } catch {
            throw storeFailure(error)
        }
    }
}

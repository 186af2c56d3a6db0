import BackchannelProtocol
import BackchannelStore
import Testing

extension StoreConformanceTests {
    @Test("devices, commands and campaigns are listed per tenant", arguments: StoreKind.allCases)
    func tenantFilters(kind: StoreKind) async throws {
        try await kind.withStore { store async throws in
            var acme = F.device("a1")
            acme.tenant = "acme"
            var globex = F.device("g1")
            globex.tenant = "globex"
            try await store.insertDevice(acme)
            try await store.insertDevice(globex)
            #expect(try await store.device(id: "a1")?.tenant == "acme")
            #expect(try await store.devices(after: nil, limit: 10, tenant: "acme").map(\.id) == ["a1"])
            #expect(try await store.devices(after: nil, limit: 10, tenant: nil).map(\.id) == ["a1", "g1"])
            _ = try await store.submit(F.command(device: "a1", created: 1))
            _ = try await store.submit(F.command(device: "g1", created: 2))
            var query = CommandQuery(limit: 10)
            query.tenant = "globex"
            #expect(try await store.commands(query).map(\.device) == ["g1"])
            var campaign = CampaignRecord(
                id: "c1", name: "read", args: [:], createdAt: F.t0, deviceCount: 1, perMinute: nil,
                abortThreshold: nil, minFinished: nil, untilAvailable: false, expiresAt: F.at(60))
            campaign.tenant = "acme"
            try await store.insertCampaign(campaign, children: [])
            #expect(try await store.campaign(id: "c1")?.tenant == "acme")
            #expect(try await store.campaigns(limit: 10, tenant: "globex").isEmpty)
            #expect(try await store.campaigns(limit: 10, tenant: "acme").map(\.id) == ["c1"])
        }
    }

    @Test("a command keeps its issuer's signature verbatim", arguments: StoreKind.allCases)
    func signatureRoundTrip(kind: StoreKind) async throws {
        try await kind.withStore(devices: ["dev-1"]) { store async throws in
            var command = F.command()
            let signature = CommandSignature(
                keyId: "ed25519:00112233445566778899aabbccddeeff", issuedAt: F.t0, nonce: "bm9uY2Utbm9uY2Utbm9uY2U",
                signature: String(repeating: "A", count: 86) + "==")
            command.signature = signature
            _ = try await store.submit(command)
            let stored = try #require(try await store.command(id: command.id))
            #expect(stored.signature == signature)
            #expect(stored.logicalRequest.signature == signature)
        }
    }

    @Test("operators: insert, conflict, list by tenant, token rotation, delete", arguments: StoreKind.allCases)
    func operators(kind: StoreKind) async throws {
        try await kind.withStore { store async throws in
            let alice = OperatorRecord(name: "alice", tenant: "acme", role: .billing, tokenHash: "h1", createdAt: F.t0)
            let bob = OperatorRecord(name: "bob", tenant: "globex", role: .admin, tokenHash: "h2", createdAt: F.t0)
            try await store.insertOperator(alice)
            try await store.insertOperator(bob)
            await expectStoreError({ $0.isConflict }) { try await store.insertOperator(alice) }
            #expect(try await store.operatorRecord(name: "alice") == alice)
            #expect(try await store.operators(tenant: "acme") == [alice])
            #expect(try await store.operators(tenant: nil).map(\.name) == ["alice", "bob"])
            #expect(try await store.setOperatorTokenHash("h3", operator: "alice"))
            #expect(try await store.operatorRecord(name: "alice")?.tokenHash == "h3")
            #expect(try await !store.setOperatorTokenHash("h4", operator: "carol"))
            #expect(try await store.deleteOperator(name: "alice"))
            #expect(try await !store.deleteOperator(name: "alice"))
            #expect(try await store.operatorRecord(name: "alice") == nil)
        }
    }

    @Test("the audit log appends in order, pages back, filters by tenant", arguments: StoreKind.allCases)
    func auditLog(kind: StoreKind) async throws {
        try await kind.withStore { store async throws in
            func entry(_ n: Int, _ tenant: String?) -> AuditEntry {
                AuditEntry(
                    seq: 0, at: F.at(Double(n)), actor: "operator:o\(n)", tenant: tenant, action: "POST /v1/x",
                    target: nil, outcome: "ok", status: 201, remote: "127.0.0.1")
            }
            try await store.appendAudit([entry(1, "acme"), entry(2, "globex")])
            try await store.appendAudit([entry(3, "acme")])
            let acme = try await store.audit(tenant: "acme", before: nil, limit: 10)
            #expect(acme.map(\.actor) == ["operator:o3", "operator:o1"])
            #expect(acme[0].seq > acme[1].seq)
            #expect(try await store.audit(tenant: nil, before: acme[0].seq, limit: 1).map(\.actor) == ["operator:o2"])
            #expect(try await store.audit(tenant: nil, before: nil, limit: 10).count == 3)
        }
    }
}

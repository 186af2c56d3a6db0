import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Self-describing XML data in and out, and CSV exports over a time range.
@Suite struct ExportTests {
    static func at(_ minute: Int) -> String { "2027-01-15T08:\(String(format: "%02d", minute)):00.000Z" }

    static func get(_ client: some TestClientProtocol, _ uri: String, token: String? = HubHarness.operatorToken)
        async throws -> TestResponse
    {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: .get, headers: headers)
    }

    /// Stores readings through the REST binding, as XML and as JSON, out of time order.
    static func seed(_ client: some TestClientProtocol, token: String) async throws {
        let xml = """
            <readings>
              <reading id="r2" at="\(at(2))"><billing_information><kWh_month>45.54</kWh_month>\
            <tariff type="string">007</tariff></billing_information></reading>
              <reading id="r1" at="\(at(1))"><billing_information><kWh_month>40</kWh_month></billing_information></reading>
            </readings>
            """
        var response = try await client.execute(
            uri: "/v1/rest/m1/readings", method: .post,
            headers: [.contentType: "application/xml", .authorization: "Bearer \(token)"],
            body: ByteBuffer(string: xml))
        #expect(response.status == .ok)
        #expect(try RESTBindingTests.poll(response).stored == ["r2", "r1"])
        let json = """
            [{"id":"r3","name":"meter","at":"\(at(3))","data":{"kWh":12.5,"note":"=HYPERLINK(\\"x\\")","V":-1.5}},
             {"id":"r9","name":"meter","at":"\(at(9))","data":{"kWh":13}}]
            """
        response = try await RESTBindingTests.call(client, .post, "/v1/rest/m1/readings", json, token: token)
        #expect(response.status == .ok)
        response = try await RESTBindingTests.call(
            client, .post, "/v1/rest/m1/events",
            #"{"id":"e1","name":"relay.changed","at":"\#(at(4))","data":{"relay":"open"}}"#, token: token)
        #expect(response.status == .ok)
    }

    @Test func csvExportCoversTheRangeInTimeOrderWithAColumnPerValue() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        try await HTTPTests.app(h).test(.router) { client in
            try await Self.seed(client, token: token)
            let response = try await Self.get(
                client, "/v1/devices/m1/export?format=csv&from=\(Self.at(0))&to=\(Self.at(5))")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/csv; charset=utf-8")
            let lines = String(decoding: response.body.readableBytesView, as: UTF8.self)
                .components(separatedBy: "\r\n").filter { !$0.isEmpty }
            #expect(
                lines == [
                    // The reading's name is its outer tag; the values inside are the columns.
                    "device,id,kind,name,at,receivedAt,V,kWh,kWh_month,note,tariff",
                    "m1,r1,reading,billing_information,\(Self.at(1)),\(lines[1].split(separator: ",")[5]),,,40,,",
                    "m1,r2,reading,billing_information,\(Self.at(2)),\(lines[2].split(separator: ",")[5]),,,45.54,,007",
                    "m1,r3,reading,meter,\(Self.at(3)),\(lines[3].split(separator: ",")[5]),-1.5,12.5,,\"'=HYPERLINK(\"\"x\"\")\",",
                ])
        }
    }

    @Test func xmlExportNamesEveryValueByItsTagAndReadsBack() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        try await HTTPTests.app(h).test(.router) { client in
            try await Self.seed(client, token: token)
            let response = try await Self.get(
                client, "/v1/devices/m1/export?format=xml&kind=all&from=\(Self.at(0))&to=\(Self.at(10))")
            #expect(response.status == .ok)
            let text = String(decoding: response.body.readableBytesView, as: UTF8.self)
            // "007" is not a JSON number, so it needs no type="string" to stay a string.
            #expect(text.contains("<billing_information><kWh_month>45.54</kWh_month><tariff>007</tariff>"))
            let root = try XMLReader.parse(Data(text.utf8))
            #expect(root.name.local == "uplink")
            #expect(root.elements.map(\.name.local) == ["reading", "reading", "reading", "event", "reading"])
            let readings = try XMLExport.items(in: root, kind: .reading)
            #expect(readings.map(\.id) == ["r1", "r2", "r3", "e1", "r9"])
            #expect(readings[1].data == ["kWh_month": 45.54, "tariff": "007"])
            #expect(readings[2].data == ["kWh": 12.5, "note": "=HYPERLINK(\"x\")", "V": -1.5])
        }
    }

    @Test func exportQueriesAreValidated() async throws {
        let h = try HubHarness()
        _ = try await h.provision("m1")
        try await HTTPTests.app(h).test(.router) { client in
            #expect(try await Self.get(client, "/v1/devices/m1/export?format=pdf").status == .badRequest)
            #expect(try await Self.get(client, "/v1/devices/m1/export?kind=alarms").status == .badRequest)
            #expect(
                try await Self.get(client, "/v1/devices/m1/export?from=\(Self.at(5))&to=\(Self.at(1))").status
                    == .badRequest)
            #expect(try await Self.get(client, "/v1/devices/m1/export?from=yesterday").status == .badRequest)
            #expect(try await Self.get(client, "/v1/devices/ghost/export").status == .notFound)
            #expect(try await Self.get(client, "/v1/devices/m1/export", token: nil).status == .unauthorized)
            // An empty range is a header alone.
            let empty = try await Self.get(client, "/v1/devices/m1/export?format=csv")
            #expect(
                String(decoding: empty.body.readableBytesView, as: UTF8.self) == "device,id,kind,name,at,receivedAt\r\n"
            )
        }
    }

    @Test func largeExportsArePagedThroughTheStore() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let items = (0..<2500).map { i in
            UplinkItem(
                id: "r\(i)", kind: .reading, name: "meter",
                at: Timestamp(milliseconds: 1_800_000_000_000 + Int64(i) * 1000), data: ["kWh": .number(Double(i))])
        }
        for (index, batch) in stride(from: 0, to: items.count, by: 500).enumerated() {
            _ = try await h.poll(
                makePoll("m1", seq: Int64(index + 1), uplink: Array(items[batch..<batch + 500])), token: token)
        }
        try await HTTPTests.app(h).test(.router) { client in
            let response = try await Self.get(
                client, "/v1/devices/m1/export?from=2027-01-01T00:00:00Z&to=2027-12-31T00:00:00Z")
            let lines = String(decoding: response.body.readableBytesView, as: UTF8.self)
                .components(separatedBy: "\r\n").filter { !$0.isEmpty }
            #expect(lines.count == 2501)
            #expect(lines.dropFirst().map { $0.split(separator: ",")[1] } == items.map { Substring($0.id) })
        }
    }

    @Test func hostileXMLReadingsAreRefused() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        try await HTTPTests.app(h).test(.router) { client in
            for body in [
                "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><readings>&x;</readings>",
                "<readings><reading id=\"a\"><x>1</x></reading></readings>",
                "<readings><reading id=\"a\" at=\"\(Self.at(1))\"><x>1</x><y>2</y></reading></readings>",
            ] {
                let response = try await client.execute(
                    uri: "/v1/rest/m1/readings", method: .post,
                    headers: [.contentType: "application/xml", .authorization: "Bearer \(token)"],
                    body: ByteBuffer(string: body))
                #expect(response.status == .badRequest, "\(body)")
                #expect(try HTTPTests.error(response).message.hasPrefix("XML:"))
            }
        }
        #expect(try await h.store.uplink(device: "m1", kind: nil, after: nil, limit: 10).isEmpty)
    }
}

import BackchannelHub
import BackchannelProtocol
import Foundation
import Hummingbird
import Testing

/// The OpenAPI document served at `/openapi.json` and the router agree, route for route.
@Suite struct OpenAPITests {
    @Test func documentAndRoutesAgree() throws {
        // With an artifact directory, as `backchannel hub` runs: every route is registered.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bc-oa-\(UUID().uuidString)")
        let h = try HubHarness { $0.artifactsDirectory = directory }
        let router = buildRouter(hub: h.hub)
        let registered = Set(
            router.routes.map { route -> String in
                let path = route.path.description.split(separator: "/").map { part in
                    part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
                }.joined(separator: "/")
                return "\(route.method.rawValue.uppercased()) /\(path)"
            }
        )
        let document = try #require(try JSONSerialization.jsonObject(with: OpenAPIDocument.data) as? [String: Any])
        let openapi = try #require(document["openapi"] as? String)
        #expect(openapi.hasPrefix("3."))
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let methods: Set<String> = ["get", "post", "put", "patch", "delete", "head", "options"]
        let documented = Set(
            paths.flatMap { path, operations in
                operations.keys.filter(methods.contains).map { "\($0.uppercased()) \(path)" }
            })
        #expect(registered.subtracting(documented).sorted() == [], "routes missing from openapi.json")
        #expect(documented.subtracting(registered).sorted() == [], "documented routes the hub does not serve")
        #expect(registered.count >= 14)
    }
}

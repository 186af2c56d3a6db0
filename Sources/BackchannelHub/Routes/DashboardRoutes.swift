import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The operator dashboard: static HTML, CSS and JavaScript shipped inside the hub (no build
/// step, nothing fetched from elsewhere). The page itself is public; everything it shows comes
/// from the operator API with the token the operator logs in with.
enum DashboardAssets {
    /// The files, by name, with their media types. Read once from the module's resources.
    static let files: [String: (type: String, data: Data)] = {
        var files: [String: (String, Data)] = [:]
        let types = [
            "html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
            "js": "text/javascript; charset=utf-8",
        ]
        for (name, type) in [("index", "html"), ("app", "css"), ("app", "js")] {
            guard
                let url = Bundle.module.url(forResource: name, withExtension: type, subdirectory: "dashboard")
                    ?? Bundle.module.url(forResource: "dashboard/\(name)", withExtension: type),
                let data = try? Data(contentsOf: url)
            else { continue }
            files["\(name).\(type)"] = (types[type] ?? "application/octet-stream", data)
        }
        return files
    }()
}

extension Hub {
    /// `GET /` (the dashboard page) and `GET /dashboard/{file}` (its stylesheet and script).
    func addDashboardRoutes(to router: Router<HubRequestContext>) {
        router.get("/") { _, _ -> Response in
            try Self.asset("index.html")
        }
        router.get("/dashboard/:file") { _, context -> Response in
            try Self.asset(try context.parameters.require("file"))
        }
    }

    static func asset(_ name: String) throws -> Response {
        guard let file = DashboardAssets.files[name] else { throw HubError.notFound("no dashboard file '\(name)'") }
        var headers = HTTPFields()
        headers[.contentType] = file.type
        // The page holds no data; a browser may keep it briefly, and nothing may frame it.
        headers[.cacheControl] = "no-cache"
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        headers[.init("Content-Security-Policy")!] =
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: file.data)))
    }
}

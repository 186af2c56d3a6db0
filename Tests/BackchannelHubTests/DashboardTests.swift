import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import Testing

@testable import BackchannelHub

/// The dashboard ships inside the hub: served at `/` with its two files, no build step and
/// nothing fetched from elsewhere. Its behaviour in a browser is Tests/e2e/test_dashboard.py.
@Suite struct DashboardTests {
    static func text(_ response: Response) async throws -> String {
        var body = ByteBuffer()
        let writer = CollectingWriter()
        try await response.body.write(writer)
        body = writer.buffer.withLock { $0 }
        return String(buffer: body)
    }

    @Test func thePageAndItsFilesAreServedWithTheirTypes() async throws {
        let page = try Hub.asset("index.html")
        #expect(page.status == .ok)
        #expect(page.headers[.contentType] == "text/html; charset=utf-8")
        #expect(page.headers[.init("Content-Security-Policy")!]?.contains("default-src 'self'") == true)
        let html = try await Self.text(page)
        #expect(html.contains("/dashboard/app.js"))
        #expect(html.contains("/dashboard/app.css"))
        #expect(try Hub.asset("app.js").headers[.contentType] == "text/javascript; charset=utf-8")
        #expect(try Hub.asset("app.css").headers[.contentType] == "text/css; charset=utf-8")
        #expect(throws: HubError.self) { _ = try Hub.asset("../Package.swift") }
        #expect(throws: HubError.self) { _ = try Hub.asset("missing.js") }
    }

    @Test func nothingIsFetchedFromAnotherOrigin() async throws {
        for name in ["index.html", "app.css", "app.js"] {
            let text = try await Self.text(try Hub.asset(name))
            #expect(text.count > 500, "\(name) is only a placeholder")
            // No script, stylesheet, font, image or fetch from an absolute URL.
            for pattern in [
                #"src\s*=\s*["']https?:"#, #"href\s*=\s*["']https?:"#, #"url\(\s*["']?https?:"#,
                #"@import"#, #"fetch\(\s*["'`]https?:"#,
            ] {
                #expect(text.range(of: pattern, options: .regularExpression) == nil, "\(name) matches \(pattern)")
            }
        }
    }
}

/// Collects a response body.
final class CollectingWriter: ResponseBodyWriter, Sendable {
    let buffer = Mutex(ByteBuffer())

    func write(_ buffer: ByteBuffer) async throws {
        self.buffer.withLock { $0.writeImmutableBuffer(buffer) }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

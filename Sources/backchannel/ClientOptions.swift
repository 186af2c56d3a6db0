import ArgumentParser
import AsyncHTTPClient
import BackchannelAgent
import BackchannelClient
import BackchannelProtocol
import BackchannelTLS
import Foundation
import NIOCore

/// Options every operator-client command takes.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Hub base URL (default: $BACKCHANNEL_HUB or http://127.0.0.1:8080).")
    var hub: String?

    @Option(
        name: .long,
        help:
            "Operator token (default: $BACKCHANNEL_TOKEN, else the one saved for this hub in ~/.backchannel/credentials.json)."
    )
    var token: String?

    @Option(
        name: .long,
        help:
            "PEM file of the CA the hub's certificate must chain to, for an https hub with a private CA (default: $BACKCHANNEL_CA; else the system's roots)."
    )
    var ca: String?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    var hubURL: String {
        hub ?? ProcessInfo.processInfo.environment["BACKCHANNEL_HUB"] ?? "http://127.0.0.1:8080"
    }

    func validate() throws {
        guard URL(string: hubURL)?.scheme.map({ ["http", "https"].contains($0) }) == true else {
            throw ValidationError("--hub must be an http:// or https:// URL")
        }
    }

    /// The operator token: flag, environment, or the saved credentials of a local hub.
    func resolvedToken() throws -> String {
        if let token { return token }
        if let token = ProcessInfo.processInfo.environment["BACKCHANNEL_TOKEN"], !token.isEmpty { return token }
        if let token = SavedCredentials.token(for: hubURL) { return token }
        throw ValidationError(
            "no operator token for \(hubURL): pass --token, set BACKCHANNEL_TOKEN, or run the hub on this machine (it saves one in \(SavedCredentials.file.path))"
        )
    }

    /// The CA file to trust: flag or environment.
    var caFile: String? {
        ca ?? ProcessInfo.processInfo.environment["BACKCHANNEL_CA"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// An HTTP client trusting ``caFile``, or nil when none is given (the operator client's own
    /// then trusts the system's roots). The caller shuts it down.
    func httpClient() throws -> HTTPClient? {
        guard let caFile else { return nil }
        var configuration = HTTPClient.Configuration()
        do {
            configuration.tlsConfiguration = try .backchannelClient(caFile: caFile)
        } catch {
            throw CLIError("--ca: \(error.reason)")
        }
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func client(http: HTTPClient? = nil) throws -> OperatorClient {
        OperatorClient(hubURL: hubURL, token: try resolvedToken(), http: http)
    }
}

/// Runs an operator call, turning hub errors into a clean exit with the hub's message.
func withClient<T>(_ options: ClientOptions, _ body: (OperatorClient) async throws -> T) async throws -> T {
    let http = try options.httpClient()
    let client: OperatorClient
    do {
        client = try options.client(http: http)
    } catch {
        try? await http?.shutdown()
        throw error
    }
    func close() async {
        try? await client.shutdown()
        try? await http?.shutdown()
    }
    do {
        let value = try await body(client)
        await close()
        return value
    } catch let error as OperatorClientError {
        await close()
        throw CLIError("hub refused: \(error)")
    } catch let error as CLIError {
        await close()
        throw error
    } catch {
        await close()
        throw CLIError("cannot reach the hub at \(options.hubURL): \(error)")
    }
}

/// A failure reported to the user as one line, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Operator tokens saved by local hubs, keyed by hub URL, in `~/.backchannel/credentials.json`.
enum SavedCredentials {
    static var file: URL {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSTemporaryDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".backchannel/credentials.json")
    }

    private struct Contents: Codable {
        var hubs: [String: String] = [:]
    }

    static func token(for hubURL: String) -> String? {
        guard let data = try? Data(contentsOf: file), let contents = try? WireJSON.decode(Contents.self, from: data)
        else {
            return nil
        }
        return contents.hubs[normalize(hubURL)]
    }

    static func save(token: String, for hubURL: String) throws {
        var contents = Contents()
        if let data = try? Data(contentsOf: file), let existing = try? WireJSON.decode(Contents.self, from: data) {
            contents = existing
        }
        contents.hubs[normalize(hubURL)] = token
        try SecretFile.write(try WireJSON.encoder(pretty: true).encode(contents), to: file)
    }

    static func normalize(_ url: String) -> String {
        var url = url.lowercased()
        while url.hasSuffix("/") { url.removeLast() }
        return url.replacingOccurrences(of: "://localhost:", with: "://127.0.0.1:")
    }
}

/// Prints rows as aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, cell in
            i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}

/// Prints a value as pretty JSON.
func printJSON(_ value: some Encodable) throws {
    print(String(decoding: try WireJSON.encoder(pretty: true).encode(value), as: UTF8.self))
}

/// A compact one-line rendering of a JSON value.
func compact(_ value: JSONValue?) -> String {
    guard let value, let data = try? WireJSON.encoder().encode(value) else { return "" }
    return String(decoding: data, as: UTF8.self)
}

/// How long ago a time was, for tables.
func ago(_ time: Timestamp?) -> String {
    guard let time else { return "never" }
    let seconds = Timestamp.now().seconds(since: time)
    if seconds < 0 { return time.description }
    if seconds < 60 { return "\(Int(seconds))s ago" }
    if seconds < 3600 { return "\(Int(seconds / 60))m ago" }
    if seconds < 86400 { return "\(Int(seconds / 3600))h ago" }
    return "\(Int(seconds / 86400))d ago"
}

import BackchannelProtocol
import Foundation
import HTTPTypes
public import Hummingbird
import Logging
import NIOCore

extension Hub {
    /// Firmware artifacts: the operator uploads and lists them under `/v1/artifacts`; devices
    /// fetch them, in ranges, from `GET /v1/firmware/{sha256}` with their own token.
    ///
    /// - `POST /v1/artifacts?name=&sha256=`: the body is the raw content, streamed to disk.
    ///   201 with the ``ArtifactInfo``, or 200 when the content was already stored; 400
    ///   `hash_mismatch` when `sha256` is given and the content hashes to something else.
    /// - `GET /v1/artifacts`: `{"items": [ArtifactInfo]}`.
    /// - `GET /v1/artifacts/{sha256}/info`: one ``ArtifactInfo``.
    /// - `GET /v1/firmware/{sha256}`: the device names itself in `X-Backchannel-Device` (or
    ///   `?device=`) and sends its bearer token. A single `Range: bytes=a-b`, `bytes=a-` or
    ///   `bytes=-n` answers 206 with `Content-Range`; none answers 200 with the whole content;
    ///   a range starting past the end answers 416 with `Content-Range: bytes */size`.
    public func addArtifactRoutes(
        to router: Router<HubRequestContext>, artifacts: ArtifactStore, maxUploadBytes: Int = 512 << 20
    ) {
        // Artifacts are content-addressed and hub-wide: any tenant's operators may upload, and
        // the listing is kept to the system tenant, so no tenant sees another's firmware names.
        let api = router.group("v1/artifacts").add(middleware: OperatorGate(hub: self))
        let systemTenant = configuration.systemTenant
        @Sendable func requireLister(_ context: HubRequestContext) throws(HubError) {
            let who = try context.require(.readOperations)
            guard who.tenant == systemTenant else {
                throw HubError.hidden(HubError.notFound("artifacts are listed to the system tenant only"))
            }
        }
        api.post { request, context -> Response in
            _ = try context.require(.firmware)
            if let length = request.headers[.contentLength].flatMap(Int64.init), length > Int64(maxUploadBytes) {
                throw HubError.tooLarge(limit: maxUploadBytes)
            }
            let expected = try request.query("sha256").map { try Self.artifactAddress($0) }
            let name = request.query("name")
            if let name,
                name.count > 256 || name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            {
                throw HubError.malformed("name: at most 256 characters, no control characters")
            }
            let (info, created) = try await Self.mapArtifactErrors {
                try await artifacts.add(request.body, expectedSHA256: expected, name: name, maxBytes: maxUploadBytes)
            }
            if created {
                self.logger.info(
                    "artifact stored",
                    metadata: ["backchannel.artifact": "\(info.sha256)", "backchannel.size": "\(info.size)"])
            }
            return try jsonResponse(info, status: created ? .created : .ok)
        }
        api.get { _, context -> Response in
            try requireLister(context)
            return try jsonResponse(ArtifactPage(items: try await Self.mapArtifactErrors { try artifacts.list() }))
        }
        api.get(":sha256/info") { _, context -> Response in
            try requireLister(context)
            let sha256 = try Self.artifactAddress(try context.pathID("sha256"))
            guard let info = try await Self.mapArtifactErrors({ try artifacts.info(sha256: sha256) }) else {
                throw HubError.notFound("no artifact has SHA-256 \(sha256)")
            }
            return try jsonResponse(info)
        }

        router.group("v1/firmware").get(":sha256") { request, context -> Response in
            guard let device = request.headers[.backchannelDevice] ?? request.query("device") else {
                throw HubError.unauthorized("name the device in the X-Backchannel-Device header")
            }
            try await self.authenticateDevice(device, credential: await self.deviceCredential(request, context))
            let sha256 = try Self.artifactAddress(try context.pathID("sha256"))
            let reader = try await Self.mapArtifactErrors { try artifacts.openReader(sha256) }
            return try Self.firmwareResponse(reader, sha256: sha256, range: request.headers[.range])
        }
    }

    /// The answer to a firmware download: the whole content, or the one range asked for.
    private static func firmwareResponse(_ reader: ArtifactReader, sha256: String, range: String?) throws -> Response {
        var headers: HTTPFields = [
            .contentType: "application/octet-stream", .acceptRanges: "bytes", .eTag: "\"\(sha256)\"",
        ]
        let size = reader.size
        var status = HTTPResponse.Status.ok
        var span: ClosedRange<Int64>? = size > 0 ? 0...(size - 1) : nil
        switch ByteRange.parse(range, size: size) {
        case .whole:
            break
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(size)"
            headers[.contentType] = "application/json"
            let body = ErrorBody(
                code: "range_not_satisfiable", message: "the range starts past the end (\(size) bytes)")
            return Response(
                status: .rangeNotSatisfiable, headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: try WireJSON.encode(body))))
        case .satisfiable(let bytes):
            status = .partialContent
            span = bytes
            headers[.contentRange] = "bytes \(bytes.lowerBound)-\(bytes.upperBound)/\(size)"
        }
        guard let span else { return Response(status: status, headers: headers, body: ResponseBody()) }
        let length = span.upperBound - span.lowerBound + 1
        let body = ResponseBody(contentLength: Int(length)) { writer in
            let chunk: Int64 = 64 * 1024
            var offset = span.lowerBound
            while offset <= span.upperBound {
                let buffer = try reader.read(at: offset, count: Int(min(chunk, span.upperBound - offset + 1)))
                guard buffer.readableBytes > 0 else { throw ArtifactStoreError.io("read", code: EIO, url: reader.url) }
                try await writer.write(buffer)
                offset += Int64(buffer.readableBytes)
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// Validates a SHA-256 from a path or query, answering 400.
    private static func artifactAddress(_ text: String) throws -> String {
        do {
            return try ArtifactStore.validate(text)
        } catch {
            throw HubError.malformed("sha256: must be 64 hex digits")
        }
    }

    /// Runs a store operation, turning its errors into HTTP answers.
    private static func mapArtifactErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ArtifactStoreError {
            throw httpError(error)
        }
    }

    private static func httpError(_ error: ArtifactStoreError) -> any Error {
        switch error.code {
        case .invalidSHA256: HubError.malformed(error.message)
        case .hashMismatch: HubError(.badRequest, "hash_mismatch", error.message)
        case .tooLarge: HubError(.contentTooLarge, ErrorCode.tooLarge, error.message)
        case .notFound: HubError.notFound(error.message)
        case .invalidRange: HubError(.rangeNotSatisfiable, "range_not_satisfiable", error.message)
        default: error  // I/O: the error middleware logs it and answers 500
        }
    }
}

/// The body of `GET /v1/artifacts`.
struct ArtifactPage: Codable {
    var items: [ArtifactInfo]
}

/// A single `Range: bytes=…` request header, resolved against a content size (RFC 9110 §14).
enum ByteRange: Equatable {
    /// The header is absent, malformed or asks for several ranges: serve the whole content.
    case whole
    /// Serve these bytes (inclusive bounds) with 206.
    case satisfiable(ClosedRange<Int64>)
    /// No byte of the range exists: 416.
    case unsatisfiable

    static func parse(_ header: String?, size: Int64) -> ByteRange {
        guard let header else { return .whole }
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes="), !text.contains(",") else { return .whole }
        let spec = text.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces)
        let last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        let isDigits = { (s: String) in !s.isEmpty && s.utf8.allSatisfy { (0x30...0x39).contains($0) } }
        if first.isEmpty {
            // Suffix range: the last n bytes.
            guard isDigits(last), let count = Int64(last) else { return .whole }
            guard count > 0, size > 0 else { return .unsatisfiable }
            return .satisfiable(max(0, size - count)...(size - 1))
        }
        guard isDigits(first), let start = Int64(first) else { return .whole }
        var end = size - 1
        if !last.isEmpty {
            guard isDigits(last), let parsed = Int64(last) else { return .whole }
            guard parsed >= start else { return .whole }
            end = min(parsed, size - 1)
        }
        guard start < size else { return .unsatisfiable }
        return .satisfiable(start...end)
    }
}

extension HTTPField.Name {
    /// The device a firmware download is for.
    static let backchannelDevice = HTTPField.Name("X-Backchannel-Device")!
}

import AsyncHTTPClient
import BackchannelProtocol
public import Foundation
import NIOCore
import NIOHTTP1
public import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a firmware download stands, reported as it goes.
public enum FirmwareProgress: Sendable, Hashable {
    /// Bytes held so far (including those from an earlier, interrupted attempt) out of `total`.
    case downloading(percent: Int, bytes: Int64, total: Int64)
    /// Every byte is held; its SHA-256 is being checked.
    case verifying
    /// The image matched its SHA-256 and is at this URL.
    case verified(URL)
}

/// Fetches a firmware artifact from the hub over the device's own outbound connection, in
/// ranges, and checks its SHA-256 before handing it over.
///
/// The bytes go to `<stateDirectory>/firmware/<sha256>.part`, fsynced after every range, so a
/// download cut by a lost connection, a crash or a reboot resumes where the file ends. When
/// the last byte is in, the whole file is hashed: on a match it is renamed to
/// `<sha256>.bin`; on a mismatch the part file is deleted and ``FirmwareError/Code-swift.struct/hashMismatch``
/// thrown. Retries are the caller's job: every failure throws, and the next call resumes.
public struct FirmwareDownloader: Sendable {
    /// The hub's base URL, such as `https://hub.example.com`.
    public var hubURL: String
    /// The device id, sent in `X-Backchannel-Device`.
    public var device: String
    /// The device's bearer token.
    public var token: String
    /// The agent's state directory; downloads go to its `firmware/` folder.
    public var stateDirectory: URL
    /// Bytes asked for in one range request.
    public var chunkSize: Int
    /// Seconds one range request may take.
    public var requestTimeout: Double

    /// TLS settings for an `https` hub (see ``AgentConfiguration/tls``).
    public var tls: TLSConfiguration?

    private let client: HubClient

    /// Creates a downloader that sends its requests through `client`.
    public init(
        client: HubClient, hubURL: String, device: String, token: String, stateDirectory: URL,
        chunkSize: Int = 256 * 1024, requestTimeout: Double = 60
    ) {
        self.client = client
        self.hubURL = hubURL
        self.device = device
        self.token = token
        self.stateDirectory = stateDirectory
        self.chunkSize = max(1, chunkSize)
        self.requestTimeout = requestTimeout
    }

    /// The folder holding part files and verified images.
    public var firmwareDirectory: URL { stateDirectory.appendingPathComponent("firmware", isDirectory: true) }

    /// Where the bytes of an unfinished download of `sha256` are kept.
    public func partURL(sha256: String) -> URL {
        firmwareDirectory.appendingPathComponent("\(sha256.lowercased()).part")
    }

    /// Where the verified image of `sha256` is kept.
    public func imageURL(sha256: String) -> URL {
        firmwareDirectory.appendingPathComponent("\(sha256.lowercased()).bin")
    }

    /// Downloads (or resumes downloading) the artifact `sha256`, verifies it and returns the
    /// URL of the verified image. An image verified earlier is returned at once.
    ///
    /// Throws ``FirmwareError`` for refusals and checks, or the HTTP client's error when the
    /// connection fails; what was received and written before the failure is kept.
    public func download(
        sha256: String, progress: @Sendable (FirmwareProgress) -> Void = { _ in }
    ) async throws -> URL {
        let sha256 = sha256.lowercased()
        guard sha256.utf8.count == 64, sha256.utf8.allSatisfy(FirmwareDigest.isHexDigit) else {
            throw FirmwareError.invalidSHA256
        }
        let image = imageURL(sha256: sha256)
        if FileManager.default.fileExists(atPath: image.path) {
            progress(.verified(image))
            return image
        }
        try FileIO.createDirectory(firmwareDirectory)
        let part = partURL(sha256: sha256)
        let file = try PartFile(url: part)
        defer { file.close() }

        var total: Int64?
        while total.map({ file.size < $0 }) ?? true {
            let start = file.size
            var request = HTTPClientRequest(url: hubURL.trimmingSuffix("/") + "/v1/firmware/\(sha256)")
            request.method = .GET
            request.tlsConfiguration = tls
            if !token.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            request.headers.add(name: "X-Backchannel-Device", value: device)
            request.headers.add(name: "Range", value: "bytes=\(start)-\(start + Int64(chunkSize) - 1)")
            let response = try await client.http.execute(
                request, timeout: .milliseconds(Int64(requestTimeout * 1000)))
            let status = Int(response.status.code)
            let contentRange = response.headers.first(name: "Content-Range")
            switch status {
            case 206:
                guard let range = ContentRange.parse(contentRange), let first = range.first, let last = range.last,
                    let size = range.size, first <= last, last < size
                else {
                    throw FirmwareError.protocolViolation("206 without a valid Content-Range")
                }
                guard first == start else { throw FirmwareError.rangeMismatch(asked: start, got: first) }
                if let known = total, known != size { throw FirmwareError.sizeMismatch(expected: known, actual: size) }
                total = size
                try await file.append(response.body, limit: last - first + 1)
                guard file.size == last + 1 else { throw FirmwareError.truncated(expected: last + 1, got: file.size) }
            case 200:
                // The server ignored the range: the body is the whole artifact, from byte 0.
                try file.truncate()
                let length = response.headers.first(name: "Content-Length").flatMap(Int64.init)
                try await file.append(response.body, limit: length ?? Int64.max)
                if let length, file.size != length { throw FirmwareError.truncated(expected: length, got: file.size) }
                total = file.size
            case 416:
                guard let size = ContentRange.parse(contentRange)?.size else { throw FirmwareError.http(status) }
                if start > size {
                    try file.remove()
                    throw FirmwareError.sizeMismatch(expected: size, actual: start)
                }
                guard start == size else { throw FirmwareError.http(status) }
                total = size  // the part file already holds every byte
            default:
                let body = try? await response.body.collect(upTo: 64 * 1024)
                let error = body.flatMap { try? WireJSON.decode(ErrorBody.self, from: Data($0.readableBytesView)) }
                if file.size == 0 { try? file.remove() }  // leave no empty part file for a refused download
                throw FirmwareError.http(status, hubCode: error?.code)
            }
            if let total {
                let percent = total == 0 ? 100 : Int(file.size * 100 / total)
                progress(.downloading(percent: percent, bytes: file.size, total: total))
            }
        }

        progress(.verifying)
        let actual = try file.sha256()
        guard actual == sha256 else {
            try file.remove()
            throw FirmwareError.hashMismatch(expected: sha256, actual: actual)
        }
        try FileIO.rename(part, to: image)
        try FileIO.syncDirectory(firmwareDirectory)
        progress(.verified(image))
        return image
    }

    /// Deletes the part file and the verified image of `sha256`, if present.
    public func discard(sha256: String) throws {
        let sha256 = sha256.lowercased()
        guard sha256.utf8.count == 64, sha256.utf8.allSatisfy(FirmwareDigest.isHexDigit) else {
            throw FirmwareError.invalidSHA256
        }
        for url in [partURL(sha256: sha256), imageURL(sha256: sha256)]
        where FileManager.default.fileExists(atPath: url.path) {
            try FileManager.default.removeItem(at: url)
        }
    }
}

/// The part file of one download: opened for appending and locked, so two downloads of the
/// same artifact in one state directory cannot interleave their bytes.
private final class PartFile {
    let url: URL
    private var fd: Int32
    private(set) var size: Int64

    init(url: URL) throws {
        self.url = url
        fd = try FileIO.open(url, flags: O_RDWR | O_CREAT)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            FileIO.close(fd)
            throw FirmwareError.busy
        }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else {
            FileIO.close(fd)
            throw DurableStorageError.io("lseek", code: errno, url: url)
        }
        size = Int64(end)
        do {
            try FileIO.syncDirectory(url.deletingLastPathComponent())
        } catch {
            FileIO.close(fd)
            throw error
        }
    }

    func close() {
        if fd >= 0 { FileIO.close(fd) }
        fd = -1
    }

    /// Appends a response body, at most `limit` bytes, fsyncing what was written even when
    /// the body fails part-way (those bytes are good, and the next attempt resumes after them).
    func append(_ body: HTTPClientResponse.Body, limit: Int64) async throws {
        let start = size
        do {
            for try await buffer in body {
                guard size - start + Int64(buffer.readableBytes) <= limit else {
                    throw FirmwareError.protocolViolation("the hub sent more bytes than the range holds")
                }
                try buffer.withUnsafeReadableBytes { bytes in
                    guard let base = bytes.baseAddress else { return }
                    var offset = 0
                    while offset < bytes.count {
                        let n = pwrite(fd, base + offset, bytes.count - offset, off_t(size) + off_t(offset))
                        if n < 0 {
                            if errno == EINTR { continue }
                            throw DurableStorageError.io("write", code: errno, url: url)
                        }
                        offset += n
                    }
                }
                size += Int64(buffer.readableBytes)
            }
        } catch {
            _ = fsync(fd)
            throw error
        }
        try FileIO.check(fsync(fd), "fsync", url)
    }

    /// Empties the file (the server is sending the whole artifact again).
    func truncate() throws {
        try FileIO.check(ftruncate(fd, 0), "ftruncate", url)
        try FileIO.check(fsync(fd), "fsync", url)
        size = 0
    }

    /// Deletes the file.
    func remove() throws {
        close()
        try FileIO.check(unlink(url.path), "unlink", url)
    }

    /// The SHA-256 of the file's bytes, in lowercase hex.
    func sha256() throws -> String {
        var hasher = SHA256Hasher()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset: Int64 = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DurableStorageError.io("read", code: errno, url: url)
            }
            if n == 0 { break }
            chunk.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            offset += Int64(n)
        }
        guard offset == size else { throw FirmwareError.sizeMismatch(expected: size, actual: offset) }
        return hasher.hexDigest()
    }
}

/// `Content-Range: bytes first-last/size` or `bytes */size`.
private struct ContentRange {
    var first: Int64?
    var last: Int64?
    var size: Int64?

    static func parse(_ header: String?) -> ContentRange? {
        guard let header, header.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = header.dropFirst("bytes ".count)
        guard let slash = spec.firstIndex(of: "/") else { return nil }
        let size = Int64(spec[spec.index(after: slash)...])
        let span = spec[..<slash]
        if span == "*" { return ContentRange(first: nil, last: nil, size: size) }
        let bounds = span.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let first = Int64(bounds[0]), let last = Int64(bounds[1]) else { return nil }
        return ContentRange(first: first, last: last, size: size)
    }
}

/// SHA-256 digests, for checking firmware images on the device.
public struct FirmwareError: Error, Hashable, CustomStringConvertible {
    /// The kind of failure; compare it with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidSHA256, http, rangeMismatch, sizeMismatch, truncated, hashMismatch, protocolViolation, busy
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The SHA-256 asked for is not 64 hex digits.
        public static let invalidSHA256 = Code(.invalidSHA256)
        /// The hub answered with an unexpected status; see ``FirmwareError/status``.
        public static let http = Code(.http)
        /// The hub sent a range starting elsewhere than where the part file ends.
        public static let rangeMismatch = Code(.rangeMismatch)
        /// The artifact's size changed between ranges, or the part file is longer than it.
        public static let sizeMismatch = Code(.sizeMismatch)
        /// A response ended before the bytes it announced.
        public static let truncated = Code(.truncated)
        /// The whole file does not hash to the SHA-256 asked for; the part file was deleted.
        public static let hashMismatch = Code(.hashMismatch)
        /// The hub's answer breaks HTTP range semantics.
        public static let protocolViolation = Code(.protocolViolation)
        /// Another download of the same artifact holds the part file.
        public static let busy = Code(.busy)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// For ``Code-swift.struct/http``: the HTTP status.
    public let status: Int?
    /// For ``Code-swift.struct/http``: the hub's error code (``ErrorBody/code``), when it sent one.
    public let hubCode: String?
    /// A one-line explanation.
    public let detail: String

    private init(_ code: Code, _ detail: String, status: Int? = nil, hubCode: String? = nil) {
        self.code = code
        self.detail = detail
        self.status = status
        self.hubCode = hubCode
    }

    static let invalidSHA256 = Self(.invalidSHA256, "the SHA-256 must be 64 hex digits")
    static let busy = Self(.busy, "another download of this artifact is in progress")
    static func http(_ status: Int, hubCode: String? = nil) -> Self {
        Self(.http, "the hub answered \(status)\(hubCode.map { " (\($0))" } ?? "")", status: status, hubCode: hubCode)
    }
    static func rangeMismatch(asked: Int64, got: Int64) -> Self {
        Self(.rangeMismatch, "asked for bytes from \(asked), the hub sent bytes from \(got)")
    }
    static func sizeMismatch(expected: Int64, actual: Int64) -> Self {
        Self(.sizeMismatch, "expected \(expected) bytes, found \(actual)")
    }
    static func truncated(expected: Int64, got: Int64) -> Self {
        Self(.truncated, "the response ended at byte \(got) of \(expected)")
    }
    static func hashMismatch(expected: String, actual: String) -> Self {
        Self(.hashMismatch, "the image's SHA-256 is \(actual), not \(expected); the partial download was deleted")
    }
    static func protocolViolation(_ detail: String) -> Self { Self(.protocolViolation, detail) }

    /// The code and the explanation.
    public var description: String { "firmware download failed (\(code)): \(detail)" }
}

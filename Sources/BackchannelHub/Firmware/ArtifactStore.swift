public import BackchannelProtocol
import CoreFoundation
import Crypto
public import Foundation
public import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the hub knows about one stored artifact (a firmware image).
public struct ArtifactInfo: Codable, Sendable, Hashable {
    /// SHA-256 of the content, 64 lowercase hex digits: the artifact's address.
    public var sha256: String
    /// Size in bytes.
    public var size: Int64
    /// The name the operator gave at upload, if any (the first upload's name is kept).
    public var name: String?
    /// When the content was first stored.
    public var uploadedAt: Timestamp

    /// Creates artifact metadata.
    public init(sha256: String, size: Int64, name: String?, uploadedAt: Timestamp) {
        self.sha256 = sha256
        self.size = size
        self.name = name
        self.uploadedAt = uploadedAt
    }
}

/// A content-addressed store of artifacts in one directory.
///
/// The content of an artifact lives in `<directory>/<sha256>` and its metadata in
/// `<directory>/<sha256>.json`. An upload is streamed to a temporary file under `.incoming/`
/// while it is hashed, fsynced, then renamed into place, so a crash leaves either the whole
/// artifact or none of it. Storing the same content twice yields the same artifact.
///
/// Every method that takes a SHA-256 validates it (64 hex digits, either case), so no caller
/// can name a path outside the directory.
public final class ArtifactStore: Sendable {
    /// The directory holding the artifacts.
    public let directory: URL
    /// Largest range one ``read(sha256:range:)`` returns.
    public static let maxReadBytes = 1 << 20

    private let incoming: URL
    private let clock: any HubClock
    /// Serialises the step that makes an upload visible, so "created" is answered once.
    private let commitLock = Mutex(())

    /// Opens (creating if absent) a store in `directory`. Temporary files that an interrupted
    /// upload left behind more than an hour ago are removed.
    public init(directory: URL, clock: any HubClock = SystemHubClock()) throws {
        self.directory = directory
        self.incoming = directory.appendingPathComponent(".incoming", isDirectory: true)
        self.clock = clock
        try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)
        let stale = Date().addingTimeInterval(-3600)
        let leftovers =
            (try? FileManager.default.contentsOfDirectory(
                at: incoming, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        for file in leftovers {
            let modified = (try? file.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate
            if (modified ?? .distantPast) < stale { try? FileManager.default.removeItem(at: file) }
        }
    }

    // MARK: Writing

    /// Streams `body` into the store and returns the artifact's metadata.
    ///
    /// - Parameters:
    ///   - expectedSHA256: when given, content hashing to anything else is refused with
    ///     ``ArtifactStoreError/Code-swift.struct/hashMismatch`` and nothing is stored.
    ///   - name: a label for operators; kept from the first upload of the content.
    ///   - maxBytes: content longer than this is refused with ``ArtifactStoreError/Code-swift.struct/tooLarge``.
    @discardableResult
    public func put<Body: AsyncSequence>(
        _ body: Body, expectedSHA256: String? = nil, name: String? = nil, maxBytes: Int
    ) async throws -> ArtifactInfo where Body.Element == ByteBuffer {
        try await add(body, expectedSHA256: expectedSHA256, name: name, maxBytes: maxBytes).info
    }

    /// Streams `body` into the store and returns the artifact's metadata (`Data` chunks).
    @discardableResult
    public func put<Body: AsyncSequence>(
        _ body: Body, expectedSHA256: String? = nil, name: String? = nil, maxBytes: Int
    ) async throws -> ArtifactInfo where Body.Element == Data {
        try await add(body, expectedSHA256: expectedSHA256, name: name, maxBytes: maxBytes).info
    }

    /// Like ``put(_:expectedSHA256:name:maxBytes:)-(ByteBuffer)``, also telling whether this call
    /// stored the content (`created`) or found it already stored.
    public func add<Body: AsyncSequence>(
        _ body: Body, expectedSHA256: String? = nil, name: String? = nil, maxBytes: Int
    ) async throws -> (info: ArtifactInfo, created: Bool) where Body.Element == ByteBuffer {
        try await ingest(body, expectedSHA256: expectedSHA256, name: name, maxBytes: maxBytes) { buffer, write in
            try buffer.withUnsafeReadableBytes(write)
        }
    }

    /// Like ``add(_:expectedSHA256:name:maxBytes:)-(ByteBuffer)``, for `Data` chunks.
    public func add<Body: AsyncSequence>(
        _ body: Body, expectedSHA256: String? = nil, name: String? = nil, maxBytes: Int
    ) async throws -> (info: ArtifactInfo, created: Bool) where Body.Element == Data {
        try await ingest(body, expectedSHA256: expectedSHA256, name: name, maxBytes: maxBytes) { data, write in
            try data.withUnsafeBytes(write)
        }
    }

    private func ingest<Body: AsyncSequence>(
        _ body: Body, expectedSHA256: String?, name: String?, maxBytes: Int,
        bytes: (Body.Element, (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) async throws -> (info: ArtifactInfo, created: Bool) {
        let expected = try expectedSHA256.map(Self.validate)
        let temporary = incoming.appendingPathComponent("\(UUID().uuidString).tmp")
        let fd = try PosixFile.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL)
        var committed = false
        var isOpen = true
        defer {
            if isOpen { _ = close(fd) }
            if !committed { unlink(temporary.path) }
        }
        var hasher = SHA256()
        var size: Int64 = 0
        for try await chunk in body {
            try bytes(chunk) { buffer in
                size += Int64(buffer.count)
                guard size <= Int64(maxBytes) else { throw ArtifactStoreError.tooLarge(limit: maxBytes) }
                hasher.update(bufferPointer: buffer)
                try PosixFile.writeAll(fd, buffer, url: temporary)
            }
        }
        try PosixFile.check(fsync(fd), "fsync", temporary)
        isOpen = false
        try PosixFile.check(close(fd), "close", temporary)
        let sha256 = hasher.finalize().map { Self.hexDigits[Int($0 >> 4)] + Self.hexDigits[Int($0 & 0xF)] }.joined()
        if let expected, expected != sha256 {
            throw ArtifactStoreError.hashMismatch(expected: expected, actual: sha256)
        }
        let result = try commitLock.withLock { _ -> (info: ArtifactInfo, created: Bool) in
            let target = contentURL(sha256)
            if FileManager.default.fileExists(atPath: target.path) {
                unlink(temporary.path)
                committed = true
                if let stored = metadata(sha256, size: size) { return (stored, false) }
                // The content was renamed into place but its metadata was lost in a crash.
                let info = ArtifactInfo(sha256: sha256, size: size, name: name, uploadedAt: clock.now())
                try writeMetadata(info)
                return (info, false)
            }
            try PosixFile.rename(temporary, to: target)
            committed = true
            try PosixFile.syncDirectory(directory)
            let info = ArtifactInfo(sha256: sha256, size: size, name: name, uploadedAt: clock.now())
            try writeMetadata(info)
            return (info, true)
        }
        return result
    }

    private func writeMetadata(_ info: ArtifactInfo) throws {
        let target = metadataURL(info.sha256)
        let temporary = incoming.appendingPathComponent("\(UUID().uuidString).json.tmp")
        let data = try WireJSON.encode(info)
        let fd = try PosixFile.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL)
        do {
            try data.withUnsafeBytes { try PosixFile.writeAll(fd, $0, url: temporary) }
            try PosixFile.check(fsync(fd), "fsync", temporary)
        } catch {
            _ = close(fd)
            unlink(temporary.path)
            throw error
        }
        _ = close(fd)
        do {
            try PosixFile.rename(temporary, to: target)
        } catch {
            unlink(temporary.path)
            throw error
        }
        try PosixFile.syncDirectory(directory)
    }

    // MARK: Reading

    /// The metadata of a stored artifact, or nil when the store does not hold it.
    public func info(sha256: String) throws -> ArtifactInfo? {
        storedInfo(try Self.validate(sha256))
    }

    /// Every stored artifact, oldest upload first.
    public func list() throws -> [ArtifactInfo] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        return names.filter(Self.isCanonical).compactMap(storedInfo).sorted {
            ($0.uploadedAt, $0.sha256) < ($1.uploadedAt, $1.sha256)
        }
    }

    /// The file holding an artifact's content (which may not exist).
    public func url(sha256: String) throws -> URL {
        contentURL(try Self.validate(sha256))
    }

    /// Reads `range` of an artifact's content: at most ``maxReadBytes`` and within its size.
    public func read(sha256: String, range: Range<Int64>) throws -> Data {
        let sha256 = try Self.validate(sha256)
        guard range.count <= Self.maxReadBytes else {
            throw ArtifactStoreError.invalidRange("reads are limited to \(Self.maxReadBytes) bytes")
        }
        let reader = try openReader(sha256)
        guard range.lowerBound >= 0, range.upperBound <= reader.size else {
            throw ArtifactStoreError.invalidRange("range \(range) is outside 0..<\(reader.size)")
        }
        var data = Data()
        var offset = range.lowerBound
        while offset < range.upperBound {
            let chunk = try reader.read(at: offset, count: Int(range.upperBound - offset))
            guard chunk.readableBytes > 0 else { throw ArtifactStoreError.io("read", code: EIO, url: reader.url) }
            data.append(contentsOf: chunk.readableBytesView)
            offset += Int64(chunk.readableBytes)
        }
        return data
    }

    /// Opens an artifact for reading, or throws ``ArtifactStoreError/Code-swift.struct/notFound``.
    func openReader(_ sha256: String) throws -> ArtifactReader {
        let url = contentURL(try Self.validate(sha256))
        let fd = url.withUnsafeFileSystemRepresentation { path in
            path.map { open($0, O_RDONLY | O_CLOEXEC) } ?? -1
        }
        guard fd >= 0 else {
            if errno == ENOENT { throw ArtifactStoreError.notFound(sha256) }
            throw ArtifactStoreError.io("open", code: errno, url: url)
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let code = errno
            _ = close(fd)
            throw ArtifactStoreError.io("fstat", code: code, url: url)
        }
        return ArtifactReader(fd: fd, size: Int64(status.st_size), url: url)
    }

    private func storedInfo(_ sha256: String) -> ArtifactInfo? {
        let content = contentURL(sha256)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: content.path) else { return nil }
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        if let info = metadata(sha256, size: size) { return info }
        // Metadata lost in a crash after the content was renamed into place: what the file says.
        let modified = (attributes[.modificationDate] as? Date).map(Timestamp.init) ?? clock.now()
        return ArtifactInfo(sha256: sha256, size: size, name: nil, uploadedAt: modified)
    }

    /// The metadata file of an artifact, if it is there and agrees with the content.
    private func metadata(_ sha256: String, size: Int64) -> ArtifactInfo? {
        guard let data = try? Data(contentsOf: metadataURL(sha256)),
            let info = try? WireJSON.decode(ArtifactInfo.self, from: data), info.sha256 == sha256, info.size == size
        else { return nil }
        return info
    }

    private func contentURL(_ sha256: String) -> URL { directory.appendingPathComponent(sha256) }
    private func metadataURL(_ sha256: String) -> URL { directory.appendingPathComponent(sha256 + ".json") }

    // MARK: Addresses

    /// Returns `text` as a canonical SHA-256 (64 lowercase hex digits), or throws
    /// ``ArtifactStoreError/Code-swift.struct/invalidSHA256``.
    public static func validate(_ text: String) throws(ArtifactStoreError) -> String {
        let lower = text.lowercased()
        guard isCanonical(lower) else { throw ArtifactStoreError.invalidSHA256 }
        return lower
    }

    private static func isCanonical(_ text: String) -> Bool {
        let utf8 = text.utf8
        return utf8.count == 64 && utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    private static let hexDigits = "0123456789abcdef".map(String.init)
}

/// An open artifact, read at offsets; the descriptor closes when the reader is released.
final class ArtifactReader: Sendable {
    let fd: Int32
    /// The content's size when it was opened (artifacts never change once stored).
    let size: Int64
    let url: URL

    init(fd: Int32, size: Int64, url: URL) {
        self.fd = fd
        self.size = size
        self.url = url
    }

    deinit { _ = close(fd) }

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    func read(at offset: Int64, count: Int) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        while buffer.readableBytes < count {
            let position = offset + Int64(buffer.readableBytes)
            let wanted = count - buffer.readableBytes
            let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { target in
                while true {
                    let n = pread(fd, target.baseAddress, wanted, off_t(position))
                    if n >= 0 { return n }
                    if errno != EINTR { throw ArtifactStoreError.io("read", code: errno, url: url) }
                }
            }
            if n == 0 { break }
        }
        return buffer
    }
}

/// An error from the artifact store. Its description names hashes, sizes and files, never content.
public struct ArtifactStoreError: Error, Hashable, CustomStringConvertible {
    /// The kind of failure; compare it with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidSHA256, hashMismatch, tooLarge, notFound, invalidRange, io
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The text is not a SHA-256 in hex (64 hex digits).
        public static let invalidSHA256 = Code(.invalidSHA256)
        /// The content does not hash to the SHA-256 the uploader declared.
        public static let hashMismatch = Code(.hashMismatch)
        /// The content is longer than the limit.
        public static let tooLarge = Code(.tooLarge)
        /// No artifact has this SHA-256.
        public static let notFound = Code(.notFound)
        /// The range is outside the artifact or longer than one read may be.
        public static let invalidRange = Code(.invalidRange)
        /// A system call failed.
        public static let io = Code(.io)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// A one-line explanation (hashes, limits, paths; never content).
    public let message: String

    private init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    static let invalidSHA256 = Self(.invalidSHA256, "sha256: must be 64 hex digits")
    static func hashMismatch(expected: String, actual: String) -> Self {
        Self(.hashMismatch, "the content's SHA-256 is \(actual), not the declared \(expected); nothing was stored")
    }
    static func tooLarge(limit: Int) -> Self { Self(.tooLarge, "the artifact exceeds \(limit) bytes") }
    static func notFound(_ sha256: String) -> Self { Self(.notFound, "no artifact has SHA-256 \(sha256)") }
    static func invalidRange(_ message: String) -> Self { Self(.invalidRange, message) }
    static func io(_ operation: String, code: Int32, url: URL) -> Self {
        Self(.io, "\(operation) failed on \(url.path): \(String(cString: strerror(code))) (errno \(code))")
    }

    /// The code and the explanation.
    public var description: String { "artifact store error (\(code)): \(message)" }
}

/// The POSIX calls the store needs, throwing ``ArtifactStoreError`` on failure.
private enum PosixFile {
    static func open(_ url: URL, flags: Int32) throws -> Int32 {
        let fd = url.withUnsafeFileSystemRepresentation { path in
            path.map { systemOpen($0, flags | O_CLOEXEC, 0o644) } ?? -1
        }
        try check(fd, "open", url)
        return fd
    }

    static func check(_ result: Int32, _ operation: String, _ url: URL) throws {
        if result < 0 { throw ArtifactStoreError.io(operation, code: errno, url: url) }
    }

    static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, url: URL) throws {
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let n = write(fd, base + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArtifactStoreError.io("write", code: errno, url: url)
            }
            offset += n
        }
    }

    static func rename(_ from: URL, to: URL) throws {
        let result = from.withUnsafeFileSystemRepresentation { source in
            to.withUnsafeFileSystemRepresentation { target in
                guard let source, let target else { return Int32(-1) }
                return systemRename(source, target)
            }
        }
        try check(result, "rename", to)
    }

    static func syncDirectory(_ directory: URL) throws {
        let fd = try open(directory, flags: O_RDONLY | O_DIRECTORY)
        defer { _ = close(fd) }
        try check(fsync(fd), "fsync", directory)
    }
}

// The system calls, under names that the `PosixFile` members of the same names do not shadow.
private func systemOpen(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}
private func systemRename(_ from: UnsafePointer<CChar>, _ to: UnsafePointer<CChar>) -> Int32 { rename(from, to) }

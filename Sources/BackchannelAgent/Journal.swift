import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An append-only file of records, one per line, each checked by a CRC-32.
///
/// A line is 8 lowercase hex digits of the CRC-32 (IEEE) of the JSON bytes, a space, the
/// compact JSON of the record, and `"\n"`. Compact JSON never contains a raw newline.
///
/// Opening replays every record. Replay stops at the first bad line (an incomplete last line,
/// a CRC mismatch, JSON that does not decode) and truncates the file there, so a crash in the
/// middle of an append never poisons later appends. A bad line in the middle of the file is
/// treated the same way: it is the end of the journal, and the good lines after it are
/// discarded without a log message. With fsync-before-return appends, only the tail can be
/// torn by a crash; a bad line in the middle means the medium is damaged, and nothing after it
/// can be trusted to be in order.
///
/// Appends are durable (`fsync`) on return. ``rewrite(_:)`` compacts through a temporary file
/// and a rename, so a crash at any point leaves either the old or the new journal whole.
///
/// Not thread-safe, on purpose: one owner (the agent's actor) at a time, and one instance per
/// file at a time.
final class Journal<Record: Codable> {
    /// The journal file.
    let url: URL
    /// How many records the file holds now.
    private(set) var recordCount = 0
    /// How many bytes the file holds now.
    private(set) var byteCount = 0
    /// Whether an append failed part-way, so the file may not match what the owner holds;
    /// the next ``rewrite(_:)`` repairs it, and appends throw until then.
    private(set) var needsRewrite = false

    private var fd: Int32 = -1
    private var isClosed = false
    private let encoder = JSONEncoder()
    private let decoder = JSONDecoder()

    /// Opens (creating if absent) the journal at `url`, replaying each good record in order.
    init(url: URL, replay: (Record) throws -> Void) throws {
        self.url = url
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let directory = url.deletingLastPathComponent()
        try FileIO.createDirectory(directory)
        try? FileManager.default.removeItem(at: FileIO.temporaryURL(for: url))  // from a crashed rewrite
        fd = try FileIO.open(url, flags: O_RDWR | O_CREAT | O_APPEND)
        do {
            try FileIO.syncDirectory(directory)  // makes a newly created file's name durable
            let bytes = try FileIO.readAll(fd, url: url)
            var start = 0
            while start < bytes.count {
                guard let newline = bytes[start...].firstIndex(of: 0x0A),
                    let record = decodeLine(bytes[start..<newline])
                else { break }
                try replay(record)
                recordCount += 1
                start = newline + 1
            }
            if start < bytes.count {
                try FileIO.check(ftruncate(fd, off_t(start)), "ftruncate", url)
                try FileIO.check(fsync(fd), "fsync", url)
            }
            byteCount = start
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Closes the file. Later appends and rewrites throw.
    func close() {
        isClosed = true
        closeDescriptor()
    }

    private func closeDescriptor() {
        if fd >= 0 { _ = FileIO.close(fd) }
        fd = -1
    }

    /// Appends records in one write and fsyncs before returning.
    ///
    /// On failure the file is cut back to its previous length when possible, ``needsRewrite``
    /// is set, and appends throw until the owner rewrites the journal from what it holds. The
    /// records of a failed append may still reappear on the next open if the cut fails too.
    func append(_ records: [Record]) throws {
        guard !records.isEmpty else { return }
        guard !isClosed else { throw DurableStorageError.closed(url) }
        guard !needsRewrite, fd >= 0 else { throw DurableStorageError.needsRewrite(url) }
        var bytes = [UInt8]()
        for record in records { try encodeLine(record, into: &bytes) }
        do {
            try FileIO.writeAll(fd, bytes, url: url)
            try FileIO.check(fsync(fd), "fsync", url)
        } catch {
            // After a failed write or fsync the tail is unknown: cut it off, and trust nothing
            // on disk until a rewrite, since a failed fsync may have dropped dirty pages.
            _ = ftruncate(fd, off_t(byteCount))
            needsRewrite = true
            throw error
        }
        recordCount += records.count
        byteCount += bytes.count
    }

    /// Replaces the whole journal with `records`, crash-safely (compaction).
    ///
    /// Writes a temporary file in the same directory, fsyncs it, renames it over the journal
    /// and fsyncs the directory. Clears ``needsRewrite`` on success.
    func rewrite(_ records: [Record]) throws {
        guard !isClosed else { throw DurableStorageError.closed(url) }
        var bytes = [UInt8]()
        for record in records { try encodeLine(record, into: &bytes) }
        do {
            try FileIO.replaceFile(url, with: bytes)
            closeDescriptor()
            fd = try FileIO.open(url, flags: O_RDWR | O_APPEND)
        } catch {
            // Whether the rename happened is unknown: stop appending through a descriptor that
            // may name the replaced file until a rewrite succeeds.
            closeDescriptor()
            needsRewrite = true
            throw error
        }
        needsRewrite = false
        recordCount = records.count
        byteCount = bytes.count
    }

    private func encodeLine(_ record: Record, into bytes: inout [UInt8]) throws {
        let json: Data
        do { json = try encoder.encode(record) } catch { throw DurableStorageError.encoding(url) }
        guard !json.contains(0x0A) else { throw DurableStorageError.encoding(url) }
        let crc = CRC32.checksum(json)
        for shift in stride(from: 28, through: 0, by: -4) {
            bytes.append(CRC32.hexDigits[Int(crc >> UInt32(shift) & 0xF)])
        }
        bytes.append(0x20)
        bytes.append(contentsOf: json)
        bytes.append(0x0A)
    }

    private func decodeLine(_ line: ArraySlice<UInt8>) -> Record? {
        guard line.count > 9, line[line.startIndex + 8] == 0x20 else { return nil }
        var expected: UInt32 = 0
        for byte in line.prefix(8) {
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: return nil
            }
            expected = expected << 4 | UInt32(digit)
        }
        let json = line.dropFirst(9)
        guard CRC32.checksum(json) == expected else { return nil }
        return try? decoder.decode(Record.self, from: Data(json))
    }
}

/// CRC-32 as in IEEE 802.3, zlib and PNG (reflected polynomial 0xEDB88320).
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// The lowercase hex digits, as ASCII.
    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Returns the CRC-32 of `bytes`.
    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}

/// Thin wrappers over the POSIX calls the durable stores need, throwing on failure.
enum FileIO {
    /// Opens `url` with `flags` (plus `O_CLOEXEC`), mode 0644 when created.
    static func open(_ url: URL, flags: Int32) throws -> Int32 {
        let fd = url.withUnsafeFileSystemRepresentation { path in
            guard let path else { return Int32(-1) }
            return systemOpen(path, flags | O_CLOEXEC, 0o644)
        }
        try check(fd, "open", url)
        return fd
    }

    /// Closes a descriptor, returning the system call's result.
    @discardableResult
    static func close(_ fd: Int32) -> Int32 { systemClose(fd) }

    /// Throws a ``DurableStorageError`` carrying `errno` when `result` is negative.
    static func check(_ result: Int32, _ operation: String, _ url: URL) throws {
        if result < 0 { throw DurableStorageError.io(operation, code: errno, url: url) }
    }

    /// Writes every byte, retrying short writes and interrupted calls.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], url: URL) throws {
        try bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let n = systemWrite(fd, base + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DurableStorageError.io("write", code: errno, url: url)
                }
                offset += n
            }
        }
    }

    /// Reads the whole file behind `fd` from offset 0.
    static func readAll(_ fd: Int32, url: URL) throws -> [UInt8] {
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(bytes.count)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DurableStorageError.io("read", code: errno, url: url)
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// Creates a directory and its parents if absent.
    static func createDirectory(_ directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw DurableStorageError.io("mkdir", code: EIO, url: directory)
        }
    }

    /// Fsyncs a directory, making renames and creations inside it durable.
    static func syncDirectory(_ directory: URL) throws {
        let fd = try open(directory, flags: O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try check(fsync(fd), "fsync", directory)
    }

    /// Atomically and durably replaces `url` with `bytes`: temp file, fsync, rename, fsync dir.
    static func replaceFile(_ url: URL, with bytes: [UInt8]) throws {
        let temporary = temporaryURL(for: url)
        let fd = try open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        do {
            try writeAll(fd, bytes, url: temporary)
            try check(fsync(fd), "fsync", temporary)
            try check(close(fd), "close", temporary)
        } catch {
            close(fd)
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        try rename(temporary, to: url)
        try syncDirectory(url.deletingLastPathComponent())
    }

    /// The temporary file that ``replaceFile(_:with:)`` writes before renaming it over `url`.
    static func temporaryURL(for url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".tmp")
    }

    /// Renames `from` over `to`.
    static func rename(_ from: URL, to: URL) throws {
        let result = from.withUnsafeFileSystemRepresentation { source in
            to.withUnsafeFileSystemRepresentation { target in
                guard let source, let target else { return Int32(-1) }
                return systemRename(source, target)
            }
        }
        try check(result, "rename", to)
    }
}

// The system calls, under names that the `FileIO` members of the same names do not shadow.
private func systemOpen(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
private func systemRename(_ from: UnsafePointer<CChar>, _ to: UnsafePointer<CChar>) -> Int32 { rename(from, to) }

/// An error from the agent's durable storage: its journals and its sequence counter.
public struct DurableStorageError: Error, Hashable, CustomStringConvertible {
    /// The kind of failure; compare it with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case io, closed, needsRewrite, encoding, corrupt, unknownRequest, invalidTransition, exhausted
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A system call failed; see ``DurableStorageError/operation`` and ``DurableStorageError/systemError``.
        public static let io = Code(.io)
        /// The store was closed.
        public static let closed = Code(.closed)
        /// An earlier write failed part-way; the store refuses appends until it is rewritten.
        public static let needsRewrite = Code(.needsRewrite)
        /// A record could not be encoded.
        public static let encoding = Code(.encoding)
        /// A file does not hold what the store wrote there.
        public static let corrupt = Code(.corrupt)
        /// The ledger has no entry for the request named.
        public static let unknownRequest = Code(.unknownRequest)
        /// The ledger entry is not in a state that allows the operation, such as starting twice.
        public static let invalidTransition = Code(.invalidTransition)
        /// The sequence counter reached `Int64.max`.
        public static let exhausted = Code(.exhausted)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// The system call or step that failed, such as `fsync`, when there is one.
    public let operation: String?
    /// The `errno` value of a failed system call.
    public let systemError: Int32?
    /// The file concerned, when there is one.
    public let path: String?

    private init(_ code: Code, operation: String? = nil, systemError: Int32? = nil, url: URL? = nil) {
        self.code = code
        self.operation = operation
        self.systemError = systemError
        self.path = url?.path
    }

    static func io(_ operation: String, code: Int32, url: URL) -> Self {
        Self(.io, operation: operation, systemError: code, url: url)
    }
    static func closed(_ url: URL) -> Self { Self(.closed, url: url) }
    static func needsRewrite(_ url: URL) -> Self { Self(.needsRewrite, url: url) }
    static func encoding(_ url: URL) -> Self { Self(.encoding, url: url) }
    static func corrupt(_ url: URL) -> Self { Self(.corrupt, url: url) }
    static var unknownRequest: Self { Self(.unknownRequest) }
    static func invalidTransition(_ operation: String) -> Self { Self(.invalidTransition, operation: operation) }
    static var exhausted: Self { Self(.exhausted) }

    /// A one-line explanation naming the step, the file and the system error; never record contents.
    public var description: String {
        var text = "durable storage error (\(code))"
        if let operation { text += ": \(operation) failed" }
        if let path { text += " on \(path)" }
        if let systemError { text += ": \(String(cString: strerror(systemError))) (errno \(systemError))" }
        return text
    }
}

public import BackchannelProtocol
public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The nonces of the signed commands a device accepted, kept until each command's signed
/// `expiresAt`, so a signed command delivered again is refused as a replay.
///
/// Durable: every ``record(_:now:)`` is appended to `nonces.journal` in the directory given and
/// fsynced before it returns, and opening the ledger reads the file back. One JSON object per
/// line: `{"keyId":…,"nonce":…,"id":…,"expiresAt":<ms>}` for an entry, and
/// `{"horizon":<ms>}` for the pruning horizon. A torn last line (a crash during an append) is
/// cut off when the file is opened.
///
/// Pruning drops entries whose `expiresAt` has passed and raises the ``horizon`` to the latest
/// expiry dropped, rewriting the file with only what is kept. A command expiring at or before the
/// horizon is refused whatever the clock says, so setting the device's clock back cannot revive a
/// command whose nonce was forgotten. ``record(_:now:)`` prunes by itself, at most once per
/// ``pruneInterval`` (and the agent prunes when it starts), always by the device's own clock.
///
/// Not thread-safe, on purpose: one owner (the agent's actor) at a time, one instance per file.
public final class NonceLedger {
    /// One accepted signed command.
    public struct Entry: Sendable, Hashable, Codable {
        /// The issuer's key id.
        public var keyId: String
        /// The signature's nonce.
        public var nonce: String
        /// The id the command was accepted under (the hub's id of the logical request).
        public var id: String
        /// The signed expiry; the entry is kept until then.
        public var expiresAt: Timestamp

        /// Creates an entry.
        public init(keyId: String, nonce: String, id: String, expiresAt: Timestamp) {
            self.keyId = keyId
            self.nonce = nonce
            self.id = id
            self.expiresAt = expiresAt
        }
    }

    private struct Line: Codable {
        var keyId: String?
        var nonce: String?
        var id: String?
        var expiresAt: Int64?
        var horizon: Int64?
    }

    private struct Key: Hashable {
        var keyId: String
        var nonce: String
    }

    /// The journal file.
    public let url: URL
    private var entries: [Key: Entry] = [:]
    /// Every command expiring at or before this time was pruned; nil when nothing was.
    public private(set) var horizon: Timestamp?
    private var fd: Int32 = -1
    private var lines = 0
    private var broken = false
    /// Seconds between the pruning passes ``record(_:now:)`` makes (default ten minutes).
    public var pruneInterval: Double = 600
    /// When the ledger was last pruned (device clock); nil before the first pass.
    public private(set) var lastPruned: Timestamp?
    /// Lines in the file, entries and horizon (for tests and diagnostics).
    public var fileLines: Int { lines }

    /// Opens (creating if absent) the ledger in `directory`.
    public init(directory: URL, fileName: String = "nonces.journal") throws(SecurityError) {
        url = directory.appendingPathComponent(fileName)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw .io("cannot create \(directory.path)")
        }
        fd = open(url.path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("cannot open \(url.path): errno \(errno)") }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(bytes.count)) }
            if n < 0 {
                if errno == EINTR { continue }
                close(fd)
                throw .io("cannot read \(url.path): errno \(errno)")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        let decoder = JSONDecoder()
        var start = 0
        while start < bytes.count {
            guard let newline = bytes[start...].firstIndex(of: 0x0A),
                let line = try? decoder.decode(Line.self, from: Data(bytes[start..<newline]))
            else { break }
            apply(line)
            lines += 1
            start = newline + 1
        }
        if start < bytes.count {
            // A torn append: cut it off so later appends start on a clean line.
            guard ftruncate(fd, off_t(start)) == 0, fsync(fd) == 0 else {
                close(fd)
                throw .io("cannot repair \(url.path): errno \(errno)")
            }
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// How many nonces are remembered.
    public var count: Int { entries.count }

    /// The entry of a nonce, if it was accepted and is still remembered.
    public func entry(keyId: String, nonce: String) -> Entry? {
        entries[Key(keyId: keyId, nonce: nonce)]
    }

    /// Remembers an accepted command, durably. Recording the same key and nonce again does nothing.
    ///
    /// Prunes expired entries (as of `now`, the device's own clock) first when the last pruning
    /// pass is more than ``pruneInterval`` ago (or `now` is before it: the clock was set back),
    /// and rewrites the file first after a failed write.
    public func record(_ entry: Entry, now: Timestamp) throws(SecurityError) {
        guard entries[Key(keyId: entry.keyId, nonce: entry.nonce)] == nil else { return }
        if broken {
            try prune(now: now, force: true)
        } else if let lastPruned, now >= lastPruned, now.seconds(since: lastPruned) < pruneInterval {
            // Pruned recently.
        } else {
            try prune(now: now, force: false)
        }
        let line = Line(keyId: entry.keyId, nonce: entry.nonce, id: entry.id, expiresAt: entry.expiresAt.milliseconds)
        try append([line])
        apply(line)
    }

    /// Forgets the entries that expired before `now` and rewrites the file without them.
    public func prune(now: Timestamp) throws(SecurityError) {
        try prune(now: now, force: false)
    }

    private func prune(now: Timestamp, force: Bool) throws(SecurityError) {
        let expired = entries.filter { $0.value.expiresAt < now }
        lastPruned = now
        guard force || !expired.isEmpty else { return }
        var horizon = self.horizon
        for (key, entry) in expired {
            entries[key] = nil
            horizon = max(horizon ?? entry.expiresAt, entry.expiresAt)
        }
        self.horizon = horizon
        var records: [Line] = []
        if let horizon { records.append(Line(horizon: horizon.milliseconds)) }
        for entry in entries.values.sorted(by: { $0.expiresAt < $1.expiresAt }) {
            records.append(
                Line(keyId: entry.keyId, nonce: entry.nonce, id: entry.id, expiresAt: entry.expiresAt.milliseconds))
        }
        try PrivateFile.write(Data(try encode(records)), to: url, mode: 0o600)
        if fd >= 0 { close(fd) }
        fd = open(url.path, O_RDWR | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else {
            broken = true
            throw .io("cannot reopen \(url.path): errno \(errno)")
        }
        broken = false
        lines = records.count
    }

    private func append(_ records: [Line]) throws(SecurityError) {
        guard !broken, fd >= 0 else { throw .io("\(url.path) needs a rewrite after a failed write") }
        let bytes = try encode(records)
        let ok = bytes.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
        guard ok, fsync(fd) == 0 else {
            // The tail is unknown: rewrite from memory before the next append.
            broken = true
            throw .io("cannot append to \(url.path): errno \(errno)")
        }
        lines += records.count
    }

    private func encode(_ records: [Line]) throws(SecurityError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var bytes: [UInt8] = []
        for record in records {
            guard let json = try? encoder.encode(record) else { throw .io("cannot encode a nonce record") }
            bytes.append(contentsOf: json)
            bytes.append(0x0A)
        }
        return bytes
    }

    private func apply(_ line: Line) {
        if let horizon = line.horizon {
            let value = Timestamp(milliseconds: horizon)
            self.horizon = max(self.horizon ?? value, value)
        }
        guard let keyId = line.keyId, let nonce = line.nonce, let id = line.id, let expiresAt = line.expiresAt else {
            return
        }
        let key = Key(keyId: keyId, nonce: nonce)
        if entries[key] == nil {
            entries[key] = Entry(keyId: keyId, nonce: nonce, id: id, expiresAt: Timestamp(milliseconds: expiresAt))
        }
    }
}

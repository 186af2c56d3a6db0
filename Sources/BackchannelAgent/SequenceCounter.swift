public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The device's poll sequence number, strictly increasing across restarts.
///
/// Writing the number on every poll would cost an fsync per poll. Instead the counter
/// reserves blocks: before it hands out a number beyond the high-water mark on disk, it
/// durably stores a new mark, `blockSize` past the current number (temporary file, fsync,
/// rename, fsync of the directory). After a restart it continues past the stored mark, so a
/// crash skips at most one block of numbers and never repeats one.
///
/// The file holds the mark as decimal text. A file that holds anything else makes
/// ``init(url:blockSize:)`` throw ``DurableStorageError/Code/corrupt``: the counter cannot
/// then promise to go up. An agent may remove the file and rely on ``advance(past:)`` when
/// the hub answers with a sequence conflict.
///
/// Not thread-safe, on purpose: one owner (the agent's actor) at a time.
public final class SequenceCounter {
    /// The counter's file.
    public let url: URL
    private let blockSize: Int64
    /// The last number handed out, or the mark found at start-up.
    private var current: Int64
    /// The durable high-water mark: no number above it has been handed out.
    private var mark: Int64

    /// Opens the counter stored at `url`, starting from 1 when the file does not exist.
    ///
    /// - Parameters:
    ///   - url: The counter's file. Its directory is created if absent.
    ///   - blockSize: How many numbers each durable write reserves (at least 1).
    public init(url: URL, blockSize: Int64 = 1000) throws {
        precondition(blockSize >= 1, "blockSize must be at least 1")
        self.url = url
        self.blockSize = blockSize
        try FileIO.createDirectory(url.deletingLastPathComponent())
        if FileManager.default.fileExists(atPath: url.path) {
            // A file that exists but cannot be read must not restart the count at 1.
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw DurableStorageError.io("read", code: EIO, url: url)
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let stored = Int64(text), stored >= 0 else { throw DurableStorageError.corrupt(url) }
            mark = stored
        } else {
            mark = 0
        }
        current = mark
    }

    /// Returns the next sequence number, greater than every number returned before, in this
    /// process or any earlier one using the same file.
    ///
    /// It writes to disk only when it crosses into a new block.
    public func next() throws -> Int64 {
        guard current < .max else { throw DurableStorageError.exhausted }
        let value = current + 1
        if value > mark { try reserve(through: value) }
        current = value
        return value
    }

    /// Makes the next number greater than `value`, durably when that crosses the stored mark.
    ///
    /// Use it when the hub reports that it has already seen a higher sequence number. A
    /// `value` below the current number changes nothing.
    public func advance(past value: Int64) throws {
        guard value > current else { return }
        if value >= mark {
            guard value < .max else { throw DurableStorageError.exhausted }
            try reserve(through: value + 1)
        }
        current = value
    }

    /// Stores a new mark `blockSize` past `value` (clamped to `Int64.max`), durably.
    private func reserve(through value: Int64) throws {
        let (sum, overflow) = value.addingReportingOverflow(blockSize - 1)
        let newMark = overflow ? Int64.max : sum
        try FileIO.replaceFile(url, with: Array("\(newMark)\n".utf8))
        mark = newMark
    }
}

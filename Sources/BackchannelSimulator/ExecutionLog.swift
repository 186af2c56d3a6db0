public import BackchannelProtocol
public import Foundation
import Synchronization

/// An append-only log of every command execution, one JSON line each, so tests can count
/// executions per command id.
public final class ExecutionLog: Sendable {
    /// One logged execution.
    public struct Entry: Codable, Sendable, Hashable {
        public var device: String
        public var id: String
        public var name: String
        public var attempt: Int
        public var at: Timestamp
    }

    private let handle: Mutex<FileHandle?>
    /// The log file.
    public let url: URL

    /// Opens (creating) the log file for appending.
    public init(url: URL) throws {
        self.url = url
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        self.handle = Mutex(handle)
    }

    /// Appends one execution.
    public func record(device: String, request: LogicalRequest) {
        let entry = Entry(device: device, id: request.id, name: request.name, attempt: request.attempt, at: .now())
        guard var line = try? WireJSON.encode(entry) else { return }
        line.append(0x0A)
        handle.withLock { handle in
            try? handle?.write(contentsOf: line)
        }
    }

    /// Appends the uplink ids the hub confirmed stored for a device, one line each:
    /// `{"device": ..., "stored": id}`.
    public func recordStored(device: String, ids: [String]) {
        var lines = Data()
        for id in ids {
            guard let line = try? WireJSON.encode(["device": device, "stored": id]) else { continue }
            lines.append(line)
            lines.append(0x0A)
        }
        handle.withLock { handle in
            try? handle?.write(contentsOf: lines)
        }
    }

    /// Reads every entry of a log file.
    public static func read(_ url: URL) throws -> [Entry] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            try? WireJSON.decode(Entry.self, from: Data(line.utf8))
        }
    }
}

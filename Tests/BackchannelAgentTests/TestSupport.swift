import BackchannelProtocol
import Foundation

/// Runs `body` with a fresh, empty directory that is removed afterwards.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("backchannel-agent-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// The size of a file in bytes.
func fileSize(_ url: URL) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
    return (attributes[.size] as? NSNumber)?.intValue ?? -1
}

/// The number of lines (newline characters) in a file.
func lineCount(_ url: URL) throws -> Int {
    try Data(contentsOf: url).reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
}

/// An uplink reading with a recognisable id.
func reading(_ n: Int) -> UplinkItem {
    UplinkItem(
        id: "r-\(n)", kind: .reading, name: "meter", at: Timestamp(milliseconds: 1_800_000_000_000 + Int64(n)),
        data: ["kwh": .number(Double(n) + 0.5), "phase": "A/B"]
    )
}

/// A logical request with a recognisable id.
func command(_ id: String, attempt: Int = 1) -> LogicalRequest {
    LogicalRequest(
        id: id, origin: "operator:test", name: "relay", args: ["state": "open"],
        createdAt: Timestamp(milliseconds: 1_800_000_000_000),
        expiresAt: Timestamp(milliseconds: 1_800_000_600_000), attempt: attempt
    )
}

/// A successful result for a request.
func success(_ id: String) -> LogicalResult {
    LogicalResult(
        id: id, status: .succeeded, data: ["ok": true], finishedAt: Timestamp(milliseconds: 1_800_000_001_000))
}

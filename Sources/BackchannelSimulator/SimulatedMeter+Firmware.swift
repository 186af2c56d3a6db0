public import BackchannelAgent
import BackchannelProtocol
import Foundation

extension SimulatedMeter {
    /// `firmware.install {sha256}`: fetches the image over the device's own outbound channel in
    /// chunks (resuming an interrupted download), verifies its SHA-256, then "installs" and
    /// "reboots". Each stage is reported as a `firmware.progress` event: downloading (with a
    /// percentage), verifying, installing, rebooting, then done or failed.
    ///
    /// A meter made with `corruptFirmware` damages the first bytes it stores, as a flaky link
    /// would, so verification fails and the command ends FAILED with `hash_mismatch`.
    static func installFirmware(
        _ request: LogicalRequest, agent: Agent, model: MeterModel, corrupt: Bool
    ) async throws -> CommandReply {
        guard let sha = request.args["sha256"]?.stringValue, sha.count == 64,
            sha.allSatisfy({ $0.isHexDigit })
        else { throw InvalidArguments("firmware.install needs {\"sha256\": 64 hex digits}") }
        var chunkSize = 256 * 1024
        if let requested = request.args["chunkSize"]?.doubleValue {
            guard requested.isFinite, requested >= 1024, requested <= 8 * 1024 * 1024 else {
                throw InvalidArguments("chunkSize: 1024-8388608 bytes")
            }
            chunkSize = Int(requested)
        }
        let configuration = agent.configuration
        var downloader = FirmwareDownloader(
            client: agent.hubClient, hubURL: configuration.hubURL, device: configuration.deviceID,
            token: configuration.token, stateDirectory: configuration.stateDirectory,
            chunkSize: chunkSize)
        downloader.tls = configuration.tls
        @Sendable func report(_ stage: String, _ extra: [String: JSONValue] = [:]) async {
            var data: [String: JSONValue] = ["sha256": .string(sha), "stage": .string(stage)]
            data.merge(extra) { _, new in new }
            _ = try? await agent.emit(.event, name: "firmware.progress", data: .object(data))
        }
        if corrupt { try Self.corruptPartialDownload(downloader, sha256: sha) }
        let reported = ReportedPercent()
        // Progress arrives synchronously from the download; one child task reports it in order,
        // and is drained before the next stage is reported.
        let (percents, sink) = AsyncStream.makeStream(of: Int.self)
        async let reporter: Void = {
            for await percent in percents { await report("downloading", ["percent": .number(Double(percent))]) }
        }()
        defer { sink.finish() }
        let image: URL
        var attempt = 0
        while true {
            attempt += 1
            do {
                image = try await downloader.download(sha256: sha) { progress in
                    if case .downloading(let percent, _, _) = progress, reported.advance(to: percent) {
                        sink.yield(percent)
                    }
                }
                sink.finish()
                await reporter
                break
            } catch let error as FirmwareError where error.code == .hashMismatch {
                sink.finish()
                await reporter
                await report("failed", ["reason": .string("hash_mismatch")])
                return .failed(
                    code: "hash_mismatch", detail: "the downloaded image does not match its SHA-256; not installed")
            } catch {
                // A cut connection: the part file keeps what arrived; the next attempt resumes.
                guard attempt < 5, !Task.isCancelled else {
                    sink.finish()
                    await reporter
                    await report("failed", ["reason": .string("download_failed")])
                    return .failed(code: "download_failed", detail: "download failed: \(error)", retryable: true)
                }
                try await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
        await report("verifying")
        await report("installing")
        await report("rebooting")
        model.setFirmware(sha)
        try? FileManager.default.removeItem(at: image)
        await report("done")
        return .succeeded(["sha256": .string(sha), "stage": "done", "attempts": .number(Double(attempt))])
    }

    /// Stores a damaged first chunk, so the rest of the download resumes after it and the whole
    /// image fails verification.
    private static func corruptPartialDownload(_ downloader: FirmwareDownloader, sha256: String) throws {
        try FileManager.default.createDirectory(at: downloader.firmwareDirectory, withIntermediateDirectories: true)
        try Data(repeating: 0xFF, count: 1024).write(to: downloader.partURL(sha256: sha256))
    }
}

/// Reports each 10 % step of a download once.
private final class ReportedPercent: @unchecked Sendable {
    private let lock = NSLock()
    private var last = -10

    func advance(to percent: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard percent >= last + 10 || (percent == 100 && last < 100) else { return false }
        last = percent
        return true
    }
}

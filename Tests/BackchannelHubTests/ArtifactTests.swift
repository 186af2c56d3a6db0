import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// Firmware artifacts: content-addressed upload, ranged device downloads, and the agent's
/// resumable, verified downloader.
@Suite struct ArtifactTests {
    static let kib = 1024

    /// A hub, an artifact store in its directory, and a router serving only the artifact routes
    /// behind a tap that logs (and can disturb) firmware requests.
    struct Fixture {
        let h: HubHarness
        let store: ArtifactStore
        let tap = FirmwareTap()
        let maxUploadBytes: Int

        init(maxUploadBytes: Int = 512 << 20) throws {
            h = try HubHarness(systemClock: true)
            store = try ArtifactStore(directory: h.directory.appendingPathComponent("artifacts"))
            self.maxUploadBytes = maxUploadBytes
        }

        /// A router of its own (not `buildRouter`), so these tests hold whether or not the
        /// application registers the artifact routes too (a route registered twice traps).
        var app: some ApplicationProtocol {
            let router = Router(context: HubRequestContext.self)
            router.add(middleware: TapMiddleware(tap: tap))
            h.hub.addArtifactRoutes(to: router, artifacts: store, maxUploadBytes: maxUploadBytes)
            return Application(router: router)
        }
    }

    static func randomBytes(_ count: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        var words = [UInt64](repeating: 0, count: (count + 7) / 8)
        for i in words.indices { words[i] = generator.next() }
        return words.withUnsafeBytes { Data($0.prefix(count)) }
    }

    static func upload(
        _ client: some TestClientProtocol, _ data: Data, query: String = "", token: String? = HubHarness.operatorToken
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/octet-stream"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(
            uri: "/v1/artifacts\(query)", method: .post, headers: headers, body: ByteBuffer(bytes: data))
    }

    static func fetch(
        _ client: some TestClientProtocol, _ sha256: String, device: String?, token: String?, range: String? = nil,
        query: String = ""
    ) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let device { headers[HTTPField.Name("X-Backchannel-Device")!] = device }
        if let range { headers[.range] = range }
        return try await client.execute(uri: "/v1/firmware/\(sha256)\(query)", method: .get, headers: headers)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try WireJSON.decode(type, from: Data(response.body.readableBytesView))
    }

    static func bytes(_ response: TestResponse) -> Data { Data(response.body.readableBytesView) }

    struct Items: Decodable {
        var items: [ArtifactInfo]
    }

    // MARK: Digest

    @Test func theAgentsSHA256MatchesKnownVectorsAndTheHubsStore() async throws {
        #expect(FirmwareDigest.sha256([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            FirmwareDigest.sha256(Array("abc".utf8))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            FirmwareDigest.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Lengths around the padding boundary and several blocks, against swift-crypto (the store).
        let f = try Fixture()
        for count in [55, 56, 63, 64, 65, 1000, 200_001] {
            let data = Self.randomBytes(count)
            let info = try await f.store.put([data].streamed, maxBytes: 1 << 20)
            #expect(info.sha256 == FirmwareDigest.sha256(data), "length \(count)")
        }
    }

    // MARK: Upload

    @Test func anUploadIsAddressedByItsSHA256AndStoringItAgainIsIdempotent() async throws {
        let f = try Fixture()
        let data = Self.randomBytes(300 * Self.kib + 17)
        let sha256 = FirmwareDigest.sha256(data)
        try await f.app.test(.router) { client in
            var response = try await Self.upload(client, data, query: "?name=relay-fw-2.1")
            #expect(response.status == .created)
            let info = try Self.decode(ArtifactInfo.self, response)
            #expect(info.sha256 == sha256)
            #expect(info.size == Int64(data.count))
            #expect(info.name == "relay-fw-2.1")

            response = try await Self.upload(client, data, query: "?sha256=\(sha256.uppercased())&name=other")
            #expect(response.status == .ok, "the same content again is the same artifact")
            #expect(try Self.decode(ArtifactInfo.self, response) == info, "the first upload's metadata is kept")

            response = try await client.execute(
                uri: "/v1/artifacts", method: .get, headers: [.authorization: "Bearer \(HubHarness.operatorToken)"])
            #expect(response.status == .ok)
            #expect(try Self.decode(Items.self, response).items == [info])

            response = try await client.execute(
                uri: "/v1/artifacts/\(sha256)/info", method: .get,
                headers: [.authorization: "Bearer \(HubHarness.operatorToken)"])
            #expect(try Self.decode(ArtifactInfo.self, response) == info)

            response = try await client.execute(
                uri: "/v1/artifacts/\(String(repeating: "0", count: 64))/info", method: .get,
                headers: [.authorization: "Bearer \(HubHarness.operatorToken)"])
            #expect(response.status == .notFound)
        }
        #expect(try Data(contentsOf: try f.store.url(sha256: sha256)) == data)
        #expect(try f.store.read(sha256: sha256, range: 1000..<1010) == data[1000..<1010])
        // A store reopened over the same directory holds the same artifact.
        let reopened = try ArtifactStore(directory: f.store.directory)
        #expect(try reopened.list() == [try #require(try f.store.info(sha256: sha256))])
    }

    @Test func anUploadWhoseContentDoesNotMatchTheDeclaredHashStoresNothing() async throws {
        let f = try Fixture()
        let data = Self.randomBytes(50 * Self.kib)
        let wrong = FirmwareDigest.sha256(Self.randomBytes(10))
        try await f.app.test(.router) { client in
            var response = try await Self.upload(client, data, query: "?sha256=\(wrong)")
            #expect(response.status == .badRequest)
            let error = try Self.decode(ErrorBody.self, response)
            #expect(error.code == "hash_mismatch")
            #expect(error.message.contains(wrong))

            response = try await Self.upload(client, data, query: "?sha256=not-a-hash")
            #expect(response.status == .badRequest)
            #expect(try Self.decode(ErrorBody.self, response).code == ErrorCode.malformed)
        }
        #expect(try f.store.list().isEmpty)
        let incoming = f.store.directory.appendingPathComponent(".incoming")
        #expect(try FileManager.default.contentsOfDirectory(atPath: incoming.path).isEmpty, "no temporary file is left")
    }

    @Test func uploadsAreLimitedInSize() async throws {
        let f = try Fixture(maxUploadBytes: 64 * Self.kib)
        try await f.app.test(.router) { client in
            let response = try await Self.upload(client, Self.randomBytes(64 * Self.kib + 1))
            #expect(response.status == .contentTooLarge)
            #expect(try Self.decode(ErrorBody.self, response).code == ErrorCode.tooLarge)
            #expect(try await Self.upload(client, Self.randomBytes(64 * Self.kib)).status == .created)
        }
        // Streamed without a Content-Length, the limit holds too.
        let chunks = (0..<5).map { _ in Self.randomBytes(20 * Self.kib) }
        await #expect(throws: ArtifactStoreError.self) {
            try await f.store.put(chunks.streamed, maxBytes: 64 * Self.kib)
        }
        #expect(try f.store.list().count == 1)
    }

    @Test func theOperatorAPINeedsTheOperatorToken() async throws {
        let f = try Fixture()
        let device = try await f.h.provision("relay-1")
        try await f.app.test(.router) { client in
            for token in [nil, "wrong", device] {
                let response = try await Self.upload(client, Data("x".utf8), token: token)
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            }
            let list = try await client.execute(uri: "/v1/artifacts", method: .get)
            #expect(list.status == .unauthorized)
            let info = try await client.execute(
                uri: "/v1/artifacts/\(String(repeating: "a", count: 64))/info", method: .get)
            #expect(info.status == .unauthorized)
        }
        #expect(try f.store.list().isEmpty)
    }

    @Test func theStoreRefusesAnythingButASHA256AsAnAddress() async throws {
        let f = try Fixture()
        for bad in ["", "../hub.sqlite", String(repeating: "g", count: 64), String(repeating: "a", count: 63)] {
            #expect(throws: ArtifactStoreError.self) { try f.store.info(sha256: bad) }
            #expect(throws: ArtifactStoreError.self) { try f.store.url(sha256: bad) }
            #expect(throws: ArtifactStoreError.self) { try f.store.read(sha256: bad, range: 0..<1) }
        }
        let info = try await f.store.put([Data("firmware".utf8)].streamed, maxBytes: 100)
        #expect(try f.store.read(sha256: info.sha256, range: 0..<8) == Data("firmware".utf8))
        #expect(throws: ArtifactStoreError.self) { try f.store.read(sha256: info.sha256, range: 4..<9) }
        #expect(throws: ArtifactStoreError.self) {
            try f.store.read(sha256: info.sha256, range: 0..<Int64(ArtifactStore.maxReadBytes + 1))
        }
    }

    @Test func concurrentUploadsOfOneContentCreateItOnceAndLostMetadataIsRebuilt() async throws {
        let f = try Fixture()
        let data = Self.randomBytes(256 * Self.kib)
        let store = f.store
        async let first = store.add([data].streamed, name: "a", maxBytes: 1 << 20)
        async let second = store.add([data].streamed, name: "b", maxBytes: 1 << 20)
        let results = try await [first, second]
        #expect(results.filter(\.created).count == 1, "exactly one upload stored the content")
        #expect(results[0].info == results[1].info)
        let sha256 = results[0].info.sha256

        // A crash between the rename of the content and the write of its metadata.
        try FileManager.default.removeItem(at: store.directory.appendingPathComponent("\(sha256).json"))
        let bare = try #require(try store.info(sha256: sha256))
        #expect(bare.size == Int64(data.count))
        #expect(bare.name == nil)
        let again = try await store.add([data].streamed, name: "c", maxBytes: 1 << 20)
        #expect(!again.created)
        #expect(again.info.name == "c", "the metadata is written again")
        #expect(try ArtifactStore(directory: store.directory).info(sha256: sha256) == again.info)
    }

    // MARK: Device download

    @Test func devicesDownloadRanges() async throws {
        let f = try Fixture()
        let token = try await f.h.provision("relay-1")
        let data = Self.randomBytes(200 * Self.kib + 3)
        let size = data.count
        let info = try await f.store.put([data].streamed, maxBytes: 1 << 20)
        let sha256 = info.sha256
        try await f.app.test(.router) { client in
            var response = try await Self.fetch(client, sha256, device: "relay-1", token: token, range: "bytes=100-199")
            #expect(response.status == .partialContent)
            #expect(response.headers[.contentRange] == "bytes 100-199/\(size)")
            #expect(response.headers[.acceptRanges] == "bytes")
            #expect(response.headers[.eTag] == "\"\(sha256)\"")
            #expect(Self.bytes(response) == data[100..<200])

            response = try await Self.fetch(client, sha256, device: "relay-1", token: token, range: "bytes=150000-")
            #expect(response.status == .partialContent)
            #expect(response.headers[.contentRange] == "bytes 150000-\(size - 1)/\(size)")
            #expect(Self.bytes(response) == data[150_000...])

            response = try await Self.fetch(client, sha256, device: "relay-1", token: token, range: "bytes=-10")
            #expect(response.status == .partialContent)
            #expect(Self.bytes(response) == data.suffix(10))

            response = try await Self.fetch(
                client, sha256, device: "relay-1", token: token, range: "bytes=\(size - 5)-\(size + 1000)")
            #expect(response.headers[.contentRange] == "bytes \(size - 5)-\(size - 1)/\(size)", "the end is clamped")
            #expect(Self.bytes(response) == data.suffix(5))

            response = try await Self.fetch(client, sha256, device: "relay-1", token: token)
            #expect(response.status == .ok)
            #expect(response.headers[.contentLength] == "\(size)")
            #expect(response.headers[.acceptRanges] == "bytes")
            #expect(Self.bytes(response) == data, "the whole artifact, streamed in chunks")

            response = try await Self.fetch(client, sha256, device: "relay-1", token: token, range: "bytes=\(size)-")
            #expect(response.status == .rangeNotSatisfiable)
            #expect(response.headers[.contentRange] == "bytes */\(size)")
            #expect(try Self.decode(ErrorBody.self, response).code == "range_not_satisfiable")

            response = try await Self.fetch(client, sha256, device: "relay-1", token: token, range: "bytes=5-1")
            #expect(response.status == .ok, "an invalid range is ignored (RFC 9110)")

            response = try await Self.fetch(
                client, String(repeating: "0", count: 64), device: "relay-1", token: token, range: "bytes=0-9")
            #expect(response.status == .notFound)
            #expect(try Self.decode(ErrorBody.self, response).code == ErrorCode.notFound)

            response = try await Self.fetch(client, "abc123", device: "relay-1", token: token)
            #expect(response.status == .badRequest)
            #expect(try Self.decode(ErrorBody.self, response).code == ErrorCode.malformed)
        }
    }

    @Test func aDownloadNeedsTheTokenOfTheDeviceItNames() async throws {
        let f = try Fixture()
        let token = try await f.h.provision("relay-1")
        let other = try await f.h.provision("relay-2")
        let info = try await f.store.put([Data("image".utf8)].streamed, maxBytes: 100)
        try await f.app.test(.router) { client in
            #expect(try await Self.fetch(client, info.sha256, device: "relay-1", token: nil).status == .unauthorized)
            #expect(try await Self.fetch(client, info.sha256, device: "relay-1", token: other).status == .unauthorized)
            #expect(try await Self.fetch(client, info.sha256, device: nil, token: token).status == .unauthorized)
            #expect(
                try await Self.fetch(client, info.sha256, device: "relay-1", token: HubHarness.operatorToken).status
                    == .unauthorized, "the operator token is not a device token")
            let unknown = try await Self.fetch(client, info.sha256, device: "ghost", token: token)
            #expect(unknown.status == .notFound)
            #expect(try Self.decode(ErrorBody.self, unknown).code == ErrorCode.unknownDevice)

            let viaQuery = try await Self.fetch(
                client, info.sha256, device: nil, token: other, query: "?device=relay-2")
            #expect(viaQuery.status == .ok)
            #expect(Self.bytes(viaQuery) == Data("image".utf8))
        }
    }

    // MARK: Agent downloader against a live hub

    /// Serves the fixture on loopback and runs `body` with a downloader for device `relay-1`.
    static func withDownloader(
        _ f: Fixture, chunkSize: Int = 256 * 1024,
        _ body: @Sendable (FirmwareDownloader, URL) async throws -> Void
    ) async throws {
        let token = try await f.h.provision("relay-1")
        let state = f.h.directory.appendingPathComponent("agent")
        let client = HubClient(connections: 4)
        do {
            try await f.app.test(.live) { live in
                let port = try #require(live.port)
                let downloader = FirmwareDownloader(
                    client: client, hubURL: "http://localhost:\(port)", device: "relay-1", token: token,
                    stateDirectory: state, chunkSize: chunkSize)
                try await body(downloader, state)
            }
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// Collects progress reports.
    final class ProgressLog: Sendable {
        private let events = Mutex<[FirmwareProgress]>([])
        var all: [FirmwareProgress] { events.withLock { $0 } }
        var callback: @Sendable (FirmwareProgress) -> Void { { event in self.events.withLock { $0.append(event) } } }
        var downloadedBytes: [Int64] {
            all.compactMap { if case .downloading(_, let bytes, _) = $0 { bytes } else { nil } }
        }
    }

    @Test func theAgentDownloadsAnArtifactInRangesAndVerifiesIt() async throws {
        let f = try Fixture()
        let data = Self.randomBytes(1536 * Self.kib + 123)
        let info = try await f.store.put([data].streamed, maxBytes: 4 << 20)
        try await Self.withDownloader(f) { downloader, _ in
            let progress = ProgressLog()
            let image = try await downloader.download(sha256: info.sha256, progress: progress.callback)
            #expect(image == downloader.imageURL(sha256: info.sha256))
            #expect(try Data(contentsOf: image) == data)
            #expect(!FileManager.default.fileExists(atPath: downloader.partURL(sha256: info.sha256).path))

            let events = progress.all
            #expect(events.last == .verified(image))
            #expect(events.dropLast().last == .verifying)
            #expect(events.contains(.downloading(percent: 100, bytes: Int64(data.count), total: Int64(data.count))))
            #expect(progress.downloadedBytes.count == 7, "1.5 MiB + 123 bytes in 256 KiB ranges")
            #expect(progress.downloadedBytes == progress.downloadedBytes.sorted())
            #expect(f.tap.ranges.first == "bytes=0-262143")
            #expect(f.tap.ranges.count == 7)

            // A verified image is not fetched again.
            #expect(try await downloader.download(sha256: info.sha256) == image)
            #expect(f.tap.ranges.count == 7)
        }
    }

    @Test func aDownloadResumesFromThePartFile() async throws {
        let f = try Fixture()
        let data = Self.randomBytes(1536 * Self.kib)
        let info = try await f.store.put([data].streamed, maxBytes: 4 << 20)
        try await Self.withDownloader(f) { downloader, _ in
            let part = downloader.partURL(sha256: info.sha256)
            try FileManager.default.createDirectory(
                at: part.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.prefix(700 * Self.kib).write(to: part)

            let progress = ProgressLog()
            let image = try await downloader.download(sha256: info.sha256, progress: progress.callback)
            #expect(try Data(contentsOf: image) == data)
            #expect(f.tap.ranges.first == "bytes=716800-978943", "asks only for what the part file lacks")
            #expect(f.tap.ranges.count == 4, "836 KiB left, in 256 KiB ranges")
            #expect(progress.downloadedBytes.first == Int64(700 * Self.kib + 256 * Self.kib))
            #expect(f.tap.bytesServed == data.count - 700 * Self.kib)
        }
    }

    @Test func aDownloadCutMidResponseResumesWhereTheBytesStopped() async throws {
        let f = try Fixture()
        let data = Self.randomBytes(1024 * Self.kib + 1)
        let info = try await f.store.put([data].streamed, maxBytes: 4 << 20)
        f.tap.configure { $0.cutResponse = 3 }  // the third range dies after its first 64 KiB
        try await Self.withDownloader(f) { downloader, _ in
            await #expect(throws: (any Error).self) {
                try await downloader.download(sha256: info.sha256)
            }
            let part = downloader.partURL(sha256: info.sha256)
            let held = try Data(contentsOf: part)
            #expect(held.count >= 512 * Self.kib && held.count < 768 * Self.kib)
            #expect(held == data.prefix(held.count), "what arrived before the cut is kept, and correct")

            let image = try await downloader.download(sha256: info.sha256)
            #expect(try Data(contentsOf: image) == data)
            #expect(f.tap.ranges[3] == "bytes=\(held.count)-\(held.count + 256 * Self.kib - 1)")
        }
    }

    @Test func aServerIgnoringTheRangeRestartsTheDownloadFromZero() async throws {
        let f = try Fixture()
        let data = Self.randomBytes(600 * Self.kib)
        let info = try await f.store.put([data].streamed, maxBytes: 4 << 20)
        f.tap.configure { $0.stripRange = true }
        try await Self.withDownloader(f) { downloader, _ in
            let part = downloader.partURL(sha256: info.sha256)
            try FileManager.default.createDirectory(
                at: part.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Self.randomBytes(100 * Self.kib).write(to: part)  // would fail the hash if kept
            let image = try await downloader.download(sha256: info.sha256)
            #expect(try Data(contentsOf: image) == data)
            #expect(f.tap.ranges.count == 1)
        }
    }

    @Test func aCorruptPartFileFailsVerificationAndIsDeleted() async throws {
        let f = try Fixture()
        let data = Self.randomBytes(700 * Self.kib)
        let info = try await f.store.put([data].streamed, maxBytes: 4 << 20)
        try await Self.withDownloader(f) { downloader, _ in
            let part = downloader.partURL(sha256: info.sha256)
            try FileManager.default.createDirectory(
                at: part.deletingLastPathComponent(), withIntermediateDirectories: true)
            var corrupt = data.prefix(300 * Self.kib)
            corrupt[corrupt.startIndex + 10] ^= 0xFF
            try corrupt.write(to: part)

            let progress = ProgressLog()
            let error = await #expect(throws: FirmwareError.self) {
                try await downloader.download(sha256: info.sha256, progress: progress.callback)
            }
            #expect(error?.code == .hashMismatch)
            #expect(error?.description.contains(info.sha256) == true)
            #expect(progress.all.last == .verifying)
            #expect(!FileManager.default.fileExists(atPath: part.path), "the bad bytes are gone")
            #expect(!FileManager.default.fileExists(atPath: downloader.imageURL(sha256: info.sha256).path))

            // The next attempt starts over and succeeds.
            let image = try await downloader.download(sha256: info.sha256)
            #expect(try Data(contentsOf: image) == data)
            #expect(f.tap.ranges.last(where: { $0.hasPrefix("bytes=0-") }) != nil)
        }
    }

    @Test func theDownloaderReportsHubRefusals() async throws {
        let f = try Fixture()
        let info = try await f.store.put([Data("image".utf8)].streamed, maxBytes: 100)
        try await Self.withDownloader(f) { downloader, _ in
            let missing = await #expect(throws: FirmwareError.self) {
                try await downloader.download(sha256: String(repeating: "0", count: 64))
            }
            #expect(missing?.code == .http)
            #expect(missing?.status == 404)
            #expect(missing?.hubCode == ErrorCode.notFound)

            var wrongToken = downloader
            wrongToken.token = "bct_wrong"
            let refused = await #expect(throws: FirmwareError.self) {
                try await wrongToken.download(sha256: info.sha256)
            }
            #expect(refused?.status == 401)

            let invalid = await #expect(throws: FirmwareError.self) {
                try await downloader.download(sha256: "../../etc/passwd")
            }
            #expect(invalid?.code == .invalidSHA256)
        }
    }

    @Test func anEmptyArtifactDownloadsAndVerifies() async throws {
        let f = try Fixture()
        let info = try await f.store.put([Data]().streamed, maxBytes: 100)
        #expect(info.size == 0)
        try await Self.withDownloader(f) { downloader, _ in
            let image = try await downloader.download(sha256: info.sha256)
            #expect(try Data(contentsOf: image).isEmpty)
        }
    }
}

/// What the firmware route was asked, and how to disturb it.
final class FirmwareTap: Sendable {
    struct State {
        /// The `Range` header of each firmware request, in order ("none" when absent).
        var ranges: [String] = []
        /// Body bytes sent by firmware responses.
        var bytesServed = 0
        /// Drop the `Range` header, as a server or proxy without range support would.
        var stripRange = false
        /// The 1-based firmware request whose response is cut after its first body chunk.
        var cutResponse: Int?
    }

    let state = Mutex(State())

    var ranges: [String] { state.withLock { $0.ranges } }
    var bytesServed: Int { state.withLock { $0.bytesServed } }
    func configure(_ change: (inout State) -> Void) { state.withLock { change(&$0) } }
}

struct TapMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let tap: FirmwareTap

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard request.uri.path.hasPrefix("/v1/firmware/") else { return try await next(request, context) }
        let (index, strip, cut) = tap.state.withLock { state in
            state.ranges.append(request.headers[.range] ?? "none")
            return (state.ranges.count, state.stripRange, state.cutResponse)
        }
        var forwarded = request
        if strip {
            var head = request.head
            head.headerFields[.range] = nil
            forwarded = Request(head: head, body: request.body)
        }
        var response = try await next(forwarded, context)
        let tap = self.tap
        let chunks = Counter()
        let length = response.headers[.contentLength]
        response.body = response.body.map { buffer in
            let sent = chunks.increment()
            if index == cut, sent > 1 { throw CancellationError() }
            tap.state.withLock { $0.bytesServed += buffer.readableBytes }
            return buffer
        }
        response.headers[.contentLength] = length  // `map` forgets the body's length
        return response
    }
}

/// A count shared with a response body's transform.
final class Counter: Sendable {
    private let value = Mutex(0)

    /// Adds one and returns the new count.
    func increment() -> Int {
        value.withLock { count in
            count += 1
            return count
        }
    }
}

extension Array where Element: Sendable {
    /// The elements as an async sequence, as a streamed body delivers chunks.
    var streamed: AsyncStream<Element> {
        AsyncStream { continuation in
            for element in self { continuation.yield(element) }
            continuation.finish()
        }
    }
}

import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import Synchronization
import Testing

/// The store backends the conformance suite runs against.
///
/// Extension point: to add a backend (for example `.postgres`), add a case here, set it up and
/// tear it down in `withLocation(_:)`, open it in `StoreLocation.open()`, and say in `isDurable`
/// whether a second `open()` sees the same data. Every test of `StoreConformanceTests` then runs
/// against it, and `StoreDurabilityTests` too when it is durable. A backend that needs a server
/// should read its address from the environment and be left out of `allCases` when it is unset.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// `MemoryMessageStore`.
    case memory
    /// `SQLiteMessageStore` on a fresh file in a unique temporary directory.
    case sqlite

    var testDescription: String { rawValue }

    /// Whether the data survives closing and reopening the store.
    var isDurable: Bool {
        switch self {
        case .memory: false
        case .sqlite: true
        }
    }

    /// Runs `body` with a new, empty store of this kind holding `devices`, then removes its files.
    func withStore(devices: [String] = [], _ body: (any MessageStore) async throws -> Void) async throws {
        try await withLocation { location in
            let store = try location.open()
            for id in devices { try await store.insertDevice(Fixture.device(id)) }
            try await body(store)
        }
    }

    /// Runs `body` with a fresh location that stores of this kind can be opened on, possibly
    /// several times in a row, then removes its files.
    func withLocation(_ body: (StoreLocation) async throws -> Void) async throws {
        switch self {
        case .memory:
            try await body(StoreLocation(kind: self, path: nil))
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("backchannel-store-tests-\(UUID().uuidString)", isDirectory: true)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            try await body(StoreLocation(kind: self, path: directory.appendingPathComponent("hub.sqlite").path))
        }
    }

    /// All kinds whose data survives a reopen.
    static var durable: [StoreKind] { allCases.filter(\.isDurable) }
}

/// Where the data of a store under test lives.
struct StoreLocation: Sendable {
    let kind: StoreKind
    /// The database file, for file-backed kinds.
    let path: String?

    /// Opens a store on this location. For durable kinds, every store opened here sees the same data.
    func open() throws -> any MessageStore {
        switch kind {
        case .memory: MemoryMessageStore()
        case .sqlite: try SQLiteMessageStore(path: path!)
        }
    }
}

/// Counts calls of a `@Sendable` closure.
final class CallCounter: Sendable {
    private let count = Atomic<Int>(0)
    func tick() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// The error a failing memo closure throws.
struct MemoFailed: Error {}

extension MessageStore {
    /// Runs one exchange with the common defaults of the tests.
    @discardableResult
    func poll(
        _ device: String = "dev-1", at now: Timestamp, uplink: [UplinkItem] = [], acks: [String] = [],
        results: [LogicalResult] = [], accept: Int = 0, lease: Double = 30, lead: Double = 0,
        memo: @Sendable (ExchangeOutcome) throws -> ExchangeMemo? = { _ in nil }
    ) async throws -> ExchangeOutcome {
        try await exchange(
            ExchangeInput(
                device: device, now: now, uplink: uplink, acks: acks, results: results, accept: accept,
                leaseSeconds: lease, dispatchLeadSeconds: lead),
            memo: memo)
    }

    /// Submits a command that must be new.
    @discardableResult
    func submitNew(_ command: CommandRecord) async throws -> CommandRecord {
        let result = try await submit(command)
        guard case .created(let record) = result else {
            Issue.record("expected a new command, got \(result)")
            return result.record
        }
        return record
    }
}

/// The whole `MessageStore` contract, run against every `StoreKind`.
@Suite("MessageStore conformance")
struct StoreConformanceTests {
    typealias F = Fixture

    /// The devices most tests start with.
    static let devices = ["dev-1", "dev-2"]

    /// Expects `body` to throw a `StoreError` satisfying `check`.
    func expectStoreError(
        _ check: (StoreError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("expected a StoreError", sourceLocation: sourceLocation)
        } catch let error as StoreError {
            #expect(check(error), "wrong StoreError: \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected a StoreError, got \(error)", sourceLocation: sourceLocation)
        }
    }
}

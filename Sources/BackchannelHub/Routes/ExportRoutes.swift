import BackchannelProtocol
import BackchannelStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Hub {
    /// What an export covers.
    struct ExportQuery: Sendable {
        var device: String
        var format: ExportFormat
        var kind: UplinkKind?
        var range: Range<Timestamp>
    }

    /// Reads `format`, `kind` (`reading`, `event` or `all`; default `reading`), `from` and `to`
    /// (RFC 3339; default the last 24 hours) for `GET /v1/devices/{id}/export`.
    func exportQuery(_ request: Request, device: String) async throws -> ExportQuery {
        let format =
            try request.query("format").map { text throws(HubError) in
                guard let format = ExportFormat(rawValue: text.lowercased()) else {
                    throw HubError.malformed("format: must be csv or xml")
                }
                return format
            } ?? .csv
        var kind: UplinkKind? = .reading
        if let text = request.query("kind") {
            if text == "all" {
                kind = nil
            } else {
                guard let parsed = UplinkKind(rawValue: text) else {
                    throw HubError.malformed("kind: must be reading, event or all")
                }
                kind = parsed
            }
        }
        let to = try request.timeQuery("to") ?? clock.now()
        let from = try request.timeQuery("from") ?? to.adding(seconds: -86_400)
        guard from < to else { throw HubError.malformed("from: must be before to") }
        guard to.seconds(since: from) <= 400 * 86_400 else {
            throw HubError.malformed("from/to: at most 400 days per export")
        }
        do {
            guard try await store.device(id: device) != nil else { throw HubError.unknownDevice(device) }
        } catch {
            throw storeFailure(error)
        }
        return ExportQuery(device: device, format: format, kind: kind, range: from..<to)
    }

    /// Streams a device's readings or events in a time range as CSV or self-describing XML,
    /// oldest first, reading the store a page at a time.
    func export(_ query: ExportQuery) -> Response {
        let store = self.store
        let page = 1000
        @Sendable func pages(_ body: ([UplinkRecord]) async throws -> Void) async throws {
            var cursor: UplinkCursor?
            while true {
                let records = try await store.uplink(
                    device: query.device, kind: query.kind, measuredIn: query.range, after: cursor, limit: page)
                if records.isEmpty { return }
                try await body(records)
                if records.count < page { return }
                cursor = UplinkCursor(after: records[records.count - 1])
            }
        }
        let name = "\(query.device)-\(query.kind?.rawValue ?? "uplink").\(query.format.rawValue)"
        var headers = HTTPFields()
        headers[.contentType] = query.format.contentType
        headers[.contentDisposition] = "attachment; filename=\"\(name.replacingOccurrences(of: "\"", with: "_"))\""
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                switch query.format {
                case .csv:
                    // First pass: the data columns, so the header names every value.
                    var columns = Set<String>()
                    try await pages { records in
                        for record in records { columns.formUnion(CSVExport.columns(of: record.item.data)) }
                    }
                    let sorted = columns.sorted()
                    try await writer.write(ByteBuffer(string: CSVExport.header(dataColumns: sorted)))
                    try await pages { records in
                        let text = records.map { CSVExport.row($0.view, dataColumns: sorted) }.joined()
                        try await writer.write(ByteBuffer(string: text))
                    }
                case .xml:
                    try await writer.write(
                        ByteBuffer(
                            string: XMLExport.open(
                                device: query.device, kind: query.kind, from: query.range.lowerBound,
                                to: query.range.upperBound)))
                    try await pages { records in
                        try await writer.write(ByteBuffer(string: records.map { XMLExport.item($0.view) }.joined()))
                    }
                    try await writer.write(ByteBuffer(string: XMLExport.close))
                }
                try await writer.finish(nil)
            }
        )
    }
}

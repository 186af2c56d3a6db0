import BackchannelProtocol
public import Foundation

/// The hub's handling of one JSON poll body, for the fuzz targets that end in a poll.
public enum PollCheck {
    /// Decodes `body` as the hub does (`POST /v1/poll` and the device socket), validates it with
    /// the default limits and, when it is valid, checks that it survives a round trip.
    ///
    /// Errors are expected and ignored; a broken invariant stops the process (`fatalError`),
    /// which libFuzzer reports as a crash with the input that caused it.
    public static func run(_ body: Data) {
        let request: PollRequest
        do {
            request = try WireJSON.decode(PollRequest.self, from: body).withoutEnvelopes
        } catch {
            _ = WireJSON.describe(error)
            return
        }
        do throws(ValidationFailure) {
            try request.validate(PollLimits())
        } catch {
            _ = error.description
            _ = try? WireJSON.encode(request)
            return
        }
        // A valid request is stored and echoed as JSON: it must encode, read back as the same
        // value, and encode to the same bytes again.
        let encoded: Data
        do {
            encoded = try WireJSON.encode(request)
        } catch {
            fatalError("a valid poll does not encode: \(error)")
        }
        let again: PollRequest
        do {
            again = try WireJSON.decode(PollRequest.self, from: encoded)
        } catch {
            fatalError("a re-encoded poll does not decode: \(WireJSON.describe(error))")
        }
        guard again == request else { fatalError("a poll changed in a JSON round trip") }
        guard (try? WireJSON.encode(again)) == encoded else { fatalError("a poll re-encodes to other bytes") }
    }
}

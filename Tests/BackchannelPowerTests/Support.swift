import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

/// Shared helpers of the power tests.

/// The time an RFC 3339 literal names (a test literal that does not parse fails the test).
func at(_ text: String) throws -> Timestamp {
    try #require(Timestamp(rfc3339: text))
}

/// A decimal from its literal text, so values are exact (a `Double` literal would not be).
func dec(_ text: String) -> Decimal {
    Decimal(string: text)!
}

/// The message of the `PowerInputError` that `body` throws, nil when it throws nothing.
func message(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as PowerInputError {
        return error.message
    } catch {
        return "unexpected \(error)"
    }
}

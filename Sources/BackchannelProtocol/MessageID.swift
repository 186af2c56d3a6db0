import Synchronization

/// Generates time-ordered identifiers (UUID version 7, RFC 9562), lower-case.
///
/// Within one process, ids made at the same or later times are strictly increasing: ids made in
/// the same millisecond carry an increasing 12-bit counter (RFC 9562 §6.2, method 1), so lists
/// ordered by id are in creation order. An id made for an earlier time than the last one keeps
/// that time, with a random counter.
public enum MessageID {
    private struct State {
        var milliseconds: Int64 = 0
        var counter: UInt16 = 0
    }

    private static let state = Mutex(State())

    /// A new UUIDv7 string, such as `019379a4-5c1e-7d2a-8b3c-4d5e6f708192`.
    public static func make(at time: Timestamp = .now()) -> String {
        var rng = SystemRandomNumberGenerator()
        let (ms, counter) = state.withLock { state -> (Int64, UInt16) in
            let now = max(0, time.milliseconds)
            if now < state.milliseconds {
                return (now, UInt16.random(in: 0...0xFFF, using: &rng))
            }
            if now > state.milliseconds {
                state.milliseconds = now
                state.counter = UInt16.random(in: 0..<0x400, using: &rng)
            } else if state.counter < 0xFFF {
                state.counter += 1
            } else {
                state.milliseconds += 1
                state.counter = 0
            }
            return (state.milliseconds, state.counter)
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: UInt64(ms) >> (8 * (5 - UInt64(i)))) }
        bytes[6] = 0x70 | UInt8(counter >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        let random = rng.next() as UInt64
        for i in 8..<16 { bytes[i] = UInt8(truncatingIfNeeded: random >> (8 * UInt64(i - 8))) }
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { byte -> String in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
        let chars = Array(hex)
        return String(chars[0..<8]) + "-" + String(chars[8..<12]) + "-" + String(chars[12..<16]) + "-"
            + String(chars[16..<20]) + "-" + String(chars[20..<32])
    }
}

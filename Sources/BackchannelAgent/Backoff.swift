/// Exponential backoff with full jitter: after `failures` consecutive failures, a random delay
/// in [0, min(max, base · 2^(failures−1))], but never less than a server's `Retry-After`.
public struct Backoff: Sendable, Hashable {
    /// First delay ceiling, seconds.
    public var base: Double
    /// Largest delay ceiling, seconds.
    public var max: Double

    /// Creates a backoff policy.
    public init(base: Double, max: Double) {
        self.base = base
        self.max = max
    }

    /// The delay ceiling after `failures` failures.
    public func ceiling(failures: Int) -> Double {
        guard failures > 0 else { return 0 }
        let exponent = Double(Swift.min(failures - 1, 30))
        return Swift.min(max, base * pow2(exponent))
    }

    /// A delay to wait after `failures` failures, honouring `retryAfter`.
    public func delay(failures: Int, retryAfter: Double? = nil) -> Double {
        let jittered = Double.random(in: 0...Swift.max(0.001, ceiling(failures: failures)))
        return Swift.max(jittered, retryAfter ?? 0)
    }

    private func pow2(_ exponent: Double) -> Double {
        var value = 1.0
        for _ in 0..<Int(exponent) { value *= 2 }
        return value
    }
}

/// Exponential backoff with jitter between attempts.
package struct RetryPolicy: Sendable, Equatable {
    package var initial: Double
    package var maximum: Double

    package init(initial: Double, maximum: Double) {
        self.initial = initial
        self.maximum = maximum
    }

    /// Seconds to wait after failed attempt `attempt` (1-based): initial × 2^(attempt-1), capped at
    /// the maximum, then spread by ±25 % so that jobs failing together do not retry together.
    package func delay(afterAttempt attempt: Int, random: Double = Double.random(in: 0..<1)) -> Double {
        let exponent = Double(max(attempt - 1, 0))
        let base = min(initial * pow2(exponent), maximum)
        let jittered = base * (0.75 + 0.5 * random)
        return min(max(jittered, 0.001), maximum)
    }

    private func pow2(_ e: Double) -> Double {
        e >= 60 ? Double.greatestFiniteMagnitude : Double(UInt64(1) << UInt64(e))
    }
}

import Foundation

/// A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64) so that every run can be
/// reproduced. Its full state can be saved and restored (for exact resume).
public struct SeededRNG: RandomNumberGenerator, Codable, Equatable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    /// The second value of the last Box-Muller pair, returned by the next `normal()` call.
    private var spareNormal: Double?

    public init(seed: UInt64) {
        var z = seed
        var s = [UInt64](repeating: 0, count: 4)
        for i in 0..<4 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            s[i] = x ^ (x >> 31)
        }
        s0 = s[0]; s1 = s[1]; s2 = s[2]; s3 = s[3]
        spareNormal = nil
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = SeededRNG.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = SeededRNG.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * nextFloat() }

    /// Normal(mean, std) by the Box-Muller transform (both values of each pair are used).
    public mutating func normal(mean: Float = 0, std: Float = 1) -> Float {
        if let z = spareNormal {
            spareNormal = nil
            return mean + std * Float(z)
        }
        var u1 = nextDouble()
        while u1 <= 0 { u1 = nextDouble() }
        let u2 = nextDouble()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        spareNormal = r * sin(2 * Double.pi * u2)
        return mean + std * Float(r * cos(2 * Double.pi * u2))
    }

    /// Uniform integer in 0..<n.
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "int(below:) needs a positive bound")
        return Int(next(upperBound: UInt64(n)))
    }

    /// A random permutation of 0..<n (Fisher-Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, int(below: i + 1)) } }
        return p
    }
}

extension Tensor {
    /// Normal(mean, std) values from a seeded generator.
    public static func randn(
        _ shape: [Int], mean: Float = 0, std: Float = 1, rng: inout SeededRNG,
        requiresGrad: Bool = false
    ) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = rng.normal(mean: mean, std: std) }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Uniform [lo, hi) values from a seeded generator.
    public static func uniform(
        _ shape: [Int], _ lo: Float, _ hi: Float, rng: inout SeededRNG,
        requiresGrad: Bool = false
    ) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = rng.uniform(lo, hi) }
        t.requiresGrad = requiresGrad
        return t
    }
}

/// Deterministic sub-seeds: the randomness of batch b of epoch e depends only on (seed, e, b), so a run
/// resumed at any iteration draws exactly what an uninterrupted run would.
public func derivedSeed(_ seed: UInt64, _ a: UInt64, _ b: UInt64 = 0) -> UInt64 {
    var x = seed &+ 0x9E37_79B9_7F4A_7C15 &* (a &+ 1) &+ 0xD1B5_4A32_D192_ED03 &* (b &+ 1)
    x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
    x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
    return x ^ (x >> 31)
}

import Foundation
import Engine

/// Balanced sampling of training examples (Detectron2's `subsample_labels`, torchvision's
/// `BalancedPositiveNegativeSampler`): from labels where a positive value is foreground (1 for the RPN, a
/// class index for the box head), 0 is background and a negative value (-1) is ignored, choose
///
///     positives: min(#foreground, Int(batchSizePerImage * positiveFraction)) at random,
///     negatives: min(#background, batchSizePerImage - positives chosen) at random,
///
/// so that an image with few foreground examples is filled up with background ones. The choice is a
/// uniformly random subset (partial Fisher-Yates shuffle) drawn from the caller's `SeededRNG`: the same
/// generator state gives the same sample. The returned indices are sorted ascending.
public struct BalancedSampler: Equatable, Sendable {
    public let batchSizePerImage: Int
    public let positiveFraction: Float

    /// Checks batchSizePerImage > 0 and positiveFraction in [0, 1].
    public init(batchSizePerImage: Int, positiveFraction: Float) throws {
        guard batchSizePerImage > 0 else {
            throw DetectionError("BalancedSampler: batchSizePerImage must be positive, got \(batchSizePerImage)")
        }
        guard positiveFraction >= 0 && positiveFraction <= 1 else {
            throw DetectionError("BalancedSampler: positiveFraction must be in [0, 1], got \(positiveFraction)")
        }
        self.batchSizePerImage = batchSizePerImage
        self.positiveFraction = positiveFraction
    }

    /// The chosen foreground and background indices into `labels`.
    public struct Sample: Equatable, Sendable {
        public var positive: [Int]
        public var negative: [Int]
    }

    public func callAsFunction(_ labels: [Int], rng: inout SeededRNG) -> Sample {
        let positives = labels.indices.filter { labels[$0] > 0 }
        let negatives = labels.indices.filter { labels[$0] == 0 }
        // Detectron2: int(num_samples * positive_fraction), a truncation.
        let numPos = min(positives.count, Int(Float(batchSizePerImage) * positiveFraction))
        let numNeg = min(negatives.count, batchSizePerImage - numPos)
        return Sample(
            positive: BalancedSampler.choose(numPos, from: positives, rng: &rng),
            negative: BalancedSampler.choose(numNeg, from: negatives, rng: &rng))
    }

    /// `k` distinct elements of `pool` chosen uniformly at random (the first k steps of a Fisher-Yates
    /// shuffle), sorted ascending.
    static func choose(_ k: Int, from pool: [Int], rng: inout SeededRNG) -> [Int] {
        var a = pool
        for i in 0..<k { a.swapAt(i, i + rng.int(below: a.count - i)) }
        return a.prefix(k).sorted()
    }
}

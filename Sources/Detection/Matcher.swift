import Foundation
import Engine

/// Assigns each prediction (anchor or proposal) to a ground-truth box from a match-quality (IoU) matrix,
/// with torchvision's `Matcher` semantics:
///
/// - each prediction takes the GT with which it has the highest IoU (the lowest GT index on ties);
/// - if that IoU is below `lowThreshold` the prediction is `belowLowThreshold` (-1, background);
///   if it is in [lowThreshold, highThreshold) it is `betweenThresholds` (-2, ignored);
/// - with `allowLowQualityMatches`, for every GT the predictions whose IoU with it equals that GT's highest
///   IoU (all ties) get back their original best match (as computed above) even when it is below the
///   thresholds, so that every GT has at least one positive (Faster R-CNN's RPN rule).
///
/// One deliberate difference from torchvision: a GT whose highest IoU is 0 (it overlaps no prediction at
/// all, e.g. a degenerate box) yields no low-quality matches; torchvision would turn every prediction with
/// IoU 0 into a match of its arg-max GT. Thresholds compare in Float32, as torch does for a float tensor
/// and a Python float. With no GT at all every prediction is `belowLowThreshold` (torchvision raises; an
/// image without objects is a valid all-background training image).
public struct Matcher: Equatable, Sendable {
    /// The prediction's best IoU is below the low threshold: background.
    public static let belowLowThreshold = -1
    /// The prediction's best IoU is between the thresholds: ignored by the loss.
    public static let betweenThresholds = -2

    public let highThreshold: Float
    public let lowThreshold: Float
    public let allowLowQualityMatches: Bool

    /// Checks that 0 <= lowThreshold <= highThreshold <= 1 (equal thresholds leave no ignored band).
    public init(highThreshold: Float, lowThreshold: Float, allowLowQualityMatches: Bool) throws {
        guard lowThreshold >= 0 && lowThreshold <= highThreshold && highThreshold <= 1 else {
            throw DetectionError(
                "Matcher: thresholds must satisfy 0 <= low <= high <= 1, got low \(lowThreshold), high \(highThreshold)"
            )
        }
        self.highThreshold = highThreshold
        self.lowThreshold = lowThreshold
        self.allowLowQualityMatches = allowLowQualityMatches
    }

    /// The RPN's matcher: positive at IoU >= 0.7, negative below 0.3, plus each GT's best anchors.
    public static let rpn = try! Matcher(highThreshold: 0.7, lowThreshold: 0.3, allowLowQualityMatches: true)
    /// The box head's matcher: foreground at IoU >= 0.5, background below.
    public static let roiHead = try! Matcher(highThreshold: 0.5, lowThreshold: 0.5, allowLowQualityMatches: false)

    /// quality: (G, P) IoUs of G ground-truth boxes with P predictions -> P matches: a GT index in 0..<G,
    /// `belowLowThreshold` or `betweenThresholds`.
    public func callAsFunction(_ quality: Tensor) -> [Int] {
        precondition(quality.rank == 2, "Matcher: quality matrix must be (G, P), got \(quality.shape)")
        let gCount = quality.shape[0], pCount = quality.shape[1], q = quality.data
        if gCount == 0 { return [Int](repeating: Matcher.belowLowThreshold, count: pCount) }
        var best = [Int](repeating: 0, count: pCount)
        var bestValue = [Float](repeating: 0, count: pCount)
        for p in 0..<pCount {
            var bi = 0, bv = q[p]
            for g in 1..<max(gCount, 1) where q[g * pCount + p] > bv { bv = q[g * pCount + p]; bi = g }
            best[p] = bi
            bestValue[p] = bv
        }
        var matches = best
        for p in 0..<pCount {
            if bestValue[p] < lowThreshold {
                matches[p] = Matcher.belowLowThreshold
            } else if bestValue[p] < highThreshold {
                matches[p] = Matcher.betweenThresholds
            }
        }
        if allowLowQualityMatches {
            for g in 0..<gCount {
                let row = q + g * pCount
                var highest = -Float.infinity
                for p in 0..<pCount { highest = max(highest, row[p]) }
                guard highest > 0 else { continue }
                for p in 0..<pCount where row[p] == highest { matches[p] = best[p] }
            }
        }
        return matches
    }

    /// Training labels from matches, as torchvision's RPN assigns them: 1 (foreground) for a matched GT,
    /// 0 (background) for `belowLowThreshold`, -1 (ignored) for `betweenThresholds`.
    public static func labels(from matches: [Int]) -> [Int] {
        matches.map { m in
            m >= 0 ? 1 : (m == belowLowThreshold ? 0 : -1)
        }
    }
}

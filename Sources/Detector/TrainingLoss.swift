import Foundation
import Engine
import NN
import Detection

/// The four losses of end-to-end (approximate joint) training, as values for logging.
public struct LossBreakdown: Codable, Equatable, Sendable {
    public var rpnCls: Float = 0, rpnBox: Float = 0, roiCls: Float = 0, roiBox: Float = 0
    public var total: Float { rpnCls + rpnBox + roiCls + roiBox }
    public init() {}
}

/// Ground truth of one training image, in the network input's pixels.
public struct TrainingTarget {
    /// (G, 4) corners.
    public var boxes: Tensor
    /// G labels in 1...K.
    public var labels: [Int]
    public init(boxes: Tensor, labels: [Int]) { self.boxes = boxes; self.labels = labels }
}

/// The weighted loss terms of a training pass and their values for logging (each part gets
/// `value * weight / over`, the term weight `weight / over`).
struct LossTerms {
    private(set) var terms: [(Tensor, Float)] = []
    var parts = LossBreakdown()

    mutating func add(
        _ term: Tensor, _ weight: Float, over n: Float = 1, to part: WritableKeyPath<LossBreakdown, Float>
    ) {
        terms.append((term, weight / n))
        parts[keyPath: part] += term.item() * weight / n
    }

    var total: Tensor { weightedSum(terms) }
}

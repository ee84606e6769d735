import Foundation
import Detection

// Pascal VOC evaluation with the semantics of py-faster-rcnn's `voc_eval` (the code behind the published
// VOC numbers of Faster R-CNN): per class, detections in score order are greedily matched to the ground
// truth of their image with the VOC +1 pixel IoU.

/// How AP is read off the precision/recall curve.
public enum VOCMetric: String, CaseIterable, Sendable {
    /// VOC2007: the mean of the maximum precision at recall >= 0, 0.1, ..., 1 (11 points).
    case voc07
    /// VOC2010 and later: the area under the monotone precision envelope.
    case voc
}

public struct VOCClassResult: Sendable {
    public var name: String
    /// Average precision; -1 when the class has no non-difficult ground truth (undefined).
    public var ap: Double
    /// Non-difficult ground-truth objects.
    public var positives: Int
    public var detections: Int
    /// The curve, one point per detection in score order (as `voc_eval` computes it).
    public var recall: [Double]
    public var precision: [Double]
}

public struct VOCEvaluation: Sendable {
    public var metric: VOCMetric
    public var iouThreshold: Double
    public var classes: [VOCClassResult]
    /// The mean AP over classes that have ground truth; -1 when none has.
    public var mAP: Double
}

/// Evaluates detections (resolved against `groundTruth.index`) with `voc_eval` semantics. Classes are
/// evaluated in parallel.
public func evaluateVOC(
    _ groundTruth: VOCGroundTruth, _ detections: [Detection],
    iouThreshold: Double = 0.5, metric: VOCMetric
) -> VOCEvaluation {
    let K = groundTruth.classNames.count
    var byClass = [[VOCGroundTruthObject]](repeating: [], count: K)
    for o in groundTruth.objects { byClass[o.classIndex].append(o) }
    var detectionsByClass = [[Detection]](repeating: [], count: K)
    for d in detections { detectionsByClass[Int(d.categoryIndex)].append(d) }

    var results = [VOCClassResult?](repeating: nil, count: K)
    results.withUnsafeMutableBufferPointer { out in
        let shared = SharedResults(buffer: out)
        DispatchQueue.concurrentPerform(iterations: K) { k in
            let outcomes = matchVOC(
                detections: detectionsByClass[k], objects: byClass[k],
                imageCount: groundTruth.imageIDs.count, threshold: iouThreshold)
            let positives = byClass[k].lazy.filter { !$0.difficult }.count
            let (recall, precision) = precisionRecall(outcomes, positives: positives)
            let ap = positives > 0 ? vocAveragePrecision(recall: recall, precision: precision, metric: metric) : -1
            shared.buffer[k] = VOCClassResult(
                name: groundTruth.classNames[k], ap: ap, positives: positives,
                detections: outcomes.count, recall: recall, precision: precision)
        }
    }
    let classes = results.map { $0! }
    let defined = classes.filter { $0.ap > -1 }
    let mAP = defined.isEmpty ? -1 : defined.reduce(0) { $0 + $1.ap } / Double(defined.count)
    return VOCEvaluation(metric: metric, iouThreshold: iouThreshold, classes: classes, mAP: mAP)
}

private struct SharedResults: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<VOCClassResult?>
}

/// What one detection turned out to be.
public enum VOCOutcome: Equatable, Sendable {
    case truePositive
    case falsePositive
    /// Matched a difficult object: neither true nor false positive.
    case ignored
}

/// py-faster-rcnn `voc_eval` matching for one class. Detections are taken best score first (equal scores in
/// the given order); each is compared with every object of the class in its image; if the best IoU
/// (the first object with the maximum) is above `threshold` (strictly), the detection is ignored when that
/// object is difficult, a true positive when it is not yet taken (taking it), a false positive otherwise.
/// Returns the outcomes in score order.
public func matchVOC(
    detections: [Detection], objects: [VOCGroundTruthObject], imageCount: Int,
    threshold: Double
) -> [VOCOutcome] {
    // Objects grouped by image, in annotation order.
    var start = [Int](repeating: 0, count: imageCount + 1)
    for o in objects { start[o.imageIndex + 1] += 1 }
    for i in 0..<imageCount { start[i + 1] += start[i] }
    var fill = start
    var grouped = objects
    for o in objects {
        grouped[fill[o.imageIndex]] = o
        fill[o.imageIndex] += 1
    }
    var taken = [Bool](repeating: false, count: objects.count)

    let order = detections.indices.sorted {
        detections[$0].score != detections[$1].score ? detections[$0].score > detections[$1].score : $0 < $1
    }
    var outcomes: [VOCOutcome] = []
    outcomes.reserveCapacity(detections.count)
    for d in order {
        let box = BoxCorners(detections[d].box)
        let image = Int(detections[d].imageIndex)
        var best = -Double.infinity, bestIndex = -1
        for j in start[image]..<start[image + 1] {
            let overlap = vocIoU(box, grouped[j].box)
            if overlap > best { best = overlap; bestIndex = j }
        }
        if best > threshold {
            if grouped[bestIndex].difficult {
                outcomes.append(.ignored)
            } else if !taken[bestIndex] {
                taken[bestIndex] = true
                outcomes.append(.truePositive)
            } else {
                outcomes.append(.falsePositive)
            }
        } else {
            outcomes.append(.falsePositive)
        }
    }
    return outcomes
}

/// Cumulative recall `tp / positives` and precision `tp / max(tp + fp, eps)` after each detection.
public func precisionRecall(_ outcomes: [VOCOutcome], positives: Int) -> (recall: [Double], precision: [Double]) {
    var recall: [Double] = [], precision: [Double] = []
    recall.reserveCapacity(outcomes.count)
    precision.reserveCapacity(outcomes.count)
    var tp = 0.0, fp = 0.0
    for o in outcomes {
        if o == .truePositive { tp += 1 }
        if o == .falsePositive { fp += 1 }
        recall.append(tp / Double(positives))
        precision.append(tp / max(tp + fp, Double.ulpOfOne))
    }
    return (recall, precision)
}

/// `voc_ap`: AP from a recall/precision curve.
/// - voc07: for t in 0, 0.1, ..., 1 (computed as `i * 0.1`, like `np.arange`), the maximum precision at
///   recall >= t (0 if none), averaged over the 11 points.
/// - voc: the curve is closed with (0, 0) and (1, 0), precision made monotone from the right, and the area
///   summed over the steps where recall changes.
public func vocAveragePrecision(recall: [Double], precision: [Double], metric: VOCMetric) -> Double {
    precondition(recall.count == precision.count)
    switch metric {
    case .voc07:
        var ap = 0.0
        for i in 0..<11 {
            let t = Double(i) * 0.1
            var p = 0.0
            for (r, q) in zip(recall, precision) where r >= t { p = max(p, q) }
            ap += p / 11
        }
        return ap
    case .voc:
        let mrec = [0] + recall + [1]
        var mpre = [0] + precision + [0]
        var i = mpre.count - 1
        while i > 0 {
            mpre[i - 1] = max(mpre[i - 1], mpre[i])
            i -= 1
        }
        var ap = 0.0
        for i in 0..<(mrec.count - 1) where mrec[i + 1] != mrec[i] { ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1] }
        return ap
    }
}

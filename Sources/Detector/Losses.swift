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

extension FasterRCNN {
    public var anchorGenerator: AnchorGenerator {
        try! AnchorGenerator(sizes: config.anchors.sizes, aspectRatios: config.anchors.aspectRatios, stride: config.anchors.stride,
                             convention: AnchorConvention(rawValue: config.anchors.convention) ?? .torchvision)
    }

    /// RPN anchor labels for one image: 1 where an anchor's IoU with some GT is >= fg_iou (plus each GT's
    /// best anchors), 0 where its best IoU is < bg_iou, -1 (ignored) in between; and the matched GT per
    /// anchor (-1 where none). No GT: every anchor is background.
    public func rpnLabels(anchors: Tensor, gt: Tensor) -> (labels: [Int], matched: [Int]) {
        let a = anchors.shape[0]
        guard gt.shape[0] > 0 else { return (Array(repeating: 0, count: a), Array(repeating: -1, count: a)) }
        let matcher = try! Matcher(highThreshold: config.rpn.fgIou, lowThreshold: config.rpn.bgIou, allowLowQualityMatches: true)
        let m = matcher(pairwiseIoU(gt, anchors))
        return (Matcher.labels(from: m), m.map { max($0, -1) })
    }

    /// RoI labels for one image's proposals (GT boxes appended by the caller): the GT class where the best
    /// IoU >= roi.fg_iou, 0 (background) where it is in [bg_iou_low, bg_iou_high), -1 (not sampled) below
    /// bg_iou_low; and the matched GT index.
    public func roiLabels(proposals: Tensor, target: TrainingTarget) -> (labels: [Int], matched: [Int]) {
        let p = proposals.shape[0], g = target.boxes.shape[0]
        guard g > 0 else { return (Array(repeating: config.roi.bgIouLow > 0 ? -1 : 0, count: p), Array(repeating: -1, count: p)) }
        let iou = pairwiseIoU(target.boxes, proposals)   // (G, P)
        var labels = [Int](repeating: -1, count: p), matched = [Int](repeating: -1, count: p)
        for j in 0..<p {
            var best: Float = -1, bi = 0
            for i in 0..<g where iou.data[i * p + j] > best { best = iou.data[i * p + j]; bi = i }
            matched[j] = bi
            if best >= config.roi.fgIou { labels[j] = target.labels[bi] }
            else if best >= config.roi.bgIouLow && best < config.roi.bgIouHigh { labels[j] = 0 }
        }
        return (labels, matched)
    }

    /// The training loss of one image (x: (1, 3, H, W)): RPN objectness (BCE over the sampled anchors) and
    /// box regression (smooth L1 over positives, normalised by the number of sampled anchors), then the box
    /// head's cross-entropy over the sampled RoIs and class-specific smooth L1 over the foreground ones
    /// (normalised by the number of sampled RoIs). Sampling draws from `rng`.
    ///
    /// Approximate joint training: proposals are constants (no gradient flows through their coordinates).
    /// `fixedProposals` replaces the RPN's proposals (before the GT boxes are appended), which makes the
    /// loss a smooth function of the weights for gradient checks.
    public func losses(_ x: Tensor, target: TrainingTarget, rng: inout SeededRNG, fixedProposals: Tensor? = nil) -> (Tensor, LossBreakdown) {
        let inputSize = (height: x.shape[2], width: x.shape[3])
        let features = backbone(x)
        let (logits, deltas) = rpn(features)
        let out = AnchorOutputs(logits: logits, deltas: deltas)
        let anchors = anchorGenerator.anchors(featureHeight: features.shape[2], featureWidth: features.shape[3])

        // RPN losses.
        let (aLabels, aMatched) = rpnLabels(anchors: anchors, gt: target.boxes)
        let aSample = try! BalancedSampler(batchSizePerImage: config.rpn.batchSizePerImage, positiveFraction: config.rpn.positiveFraction)(aLabels, rng: &rng)
        let sampled = aSample.positive + aSample.negative
        let nSampled = Float(max(sampled.count, 1))
        let objTargets = Tensor(sampled.map { aLabels[$0] > 0 ? 1 : 0 }, shape: [sampled.count])
        let rpnCls = binaryCrossEntropyWithLogits(gatherRows(out.objectness, sampled), targets: objTargets)
        var terms: [(Tensor, Float)] = [(rpnCls, 1)]
        var parts = LossBreakdown()
        parts.rpnCls = rpnCls.item()
        if !aSample.positive.isEmpty {
            let pos = aSample.positive
            let regTargets = BoxCoder.rpn.encode(selectRows(target.boxes, pos.map { aMatched[$0] }), relativeTo: selectRows(anchors, pos))
            let l = smoothL1(gatherRows(out.deltas, pos), regTargets, beta: config.rpn.smoothL1Beta, reduction: .sum)
            terms.append((l, 1 / nSampled)); parts.rpnBox = l.item() / nSampled
        }

        // A diverged RPN (non-finite outputs) ends here: the trainer reports the non-finite loss.
        if !(0..<out.objectness.count).allSatisfy({ out.objectness.data[$0].isFinite }) {
            parts.rpnCls = .nan
            return (weightedSum(terms), parts)
        }
        // Proposals from the detached RPN outputs, GT appended.
        let gen = ProposalGenerator(preNmsTopK: config.rpn.preNmsTopKTrain, postNmsTopK: config.rpn.postNmsTopKTrain,
                                    nmsThreshold: config.rpn.nmsThreshold, minSize: config.rpn.minSize)
        let detachedOut = AnchorOutputs(objectness: out.objectness.detached(), deltas: out.deltas.detached())
        var proposals = fixedProposals ?? gen(detachedOut, anchors: anchors, imageSize: inputSize).boxes
        if target.boxes.shape[0] > 0 { proposals = concatRows(proposals, target.boxes) }

        // RoI sampling and head losses.
        let (rLabels, rMatched) = roiLabels(proposals: proposals, target: target)
        let rSample = try! BalancedSampler(batchSizePerImage: config.roi.batchSizePerImage, positiveFraction: config.roi.positiveFraction)(rLabels, rng: &rng)
        let rois = rSample.positive + rSample.negative
        guard !rois.isEmpty else { return (weightedSum(terms), parts) }
        let roiBoxes = selectRows(proposals, rois)
        let pooler = try! RoIPooler(kind: RoIPoolerKind(rawValue: config.roi.pooler) ?? .roipool, outputSize: config.roi.resolution,
                                    spatialScale: 1.0 / Float(config.anchors.stride))
        let regions = pooler(features, rois: makeRoIs(boxes: roiBoxes))
        let (classLogits, boxDeltas) = roiHeads(regions)
        let roiCls = crossEntropy(classLogits, targets: rois.map { max(rLabels[$0], 0) })
        terms.append((roiCls, 1)); parts.roiCls = roiCls.item()
        let nFg = rSample.positive.count
        if nFg > 0 {
            let k1 = config.numClasses + 1
            // Class-specific deltas of the foreground rows: row i's columns 4c..4c+3 for its class c.
            let picks = (0..<nFg).map { i in i * k1 + rLabels[rois[i]] }
            let pred = gatherRows(boxDeltas.reshaped([rois.count * k1, 4]), picks)
            let coder = try! BoxCoder(weights: config.roi.boxWeights)
            let fgIdx = Array(rois.prefix(nFg))
            let regTargets = coder.encode(selectRows(target.boxes, fgIdx.map { rMatched[$0] }), relativeTo: selectRows(proposals, fgIdx))
            let l = smoothL1(pred, regTargets, beta: config.roi.smoothL1Beta, reduction: .sum)
            let norm = Float(rois.count)
            terms.append((l, 1 / norm)); parts.roiBox = l.item() / norm
        }
        return (weightedSum(terms), parts)
    }
}

extension AnchorOutputs {
    init(objectness: Tensor, deltas: Tensor) { self.objectness = objectness; self.deltas = deltas }
}

/// Rows of `a` then rows of `b` (no gradient).
func concatRows(_ a: Tensor, _ b: Tensor) -> Tensor {
    let inner = a.shape.dropFirst().reduce(1, *)
    var s = a.shape; s[0] += b.shape[0]
    let y = Tensor(uninitialized: s)
    y.data.update(from: a.data, count: a.count)
    (y.data + a.count).update(from: b.data, count: b.count)
    precondition(b.count == b.shape[0] * inner, "concatRows: shapes \(a.shape) and \(b.shape) differ")
    return y
}

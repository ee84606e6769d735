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
                             convention: config.anchors.convention)
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

    /// The training loss of one image (x: (1, 3, H, W)); see `losses(_:targets:imageSizes:rngs:fixedProposals:)`.
    public func losses(_ x: Tensor, target: TrainingTarget, rng: inout SeededRNG, fixedProposals: Tensor? = nil) -> (Tensor, LossBreakdown) {
        var rngs = [rng]
        defer { rng = rngs[0] }
        return losses(x, targets: [target], imageSizes: [(x.shape[2], x.shape[3])], rngs: &rngs,
                      fixedProposals: fixedProposals.map { [$0] })
    }

    /// The training loss of a batch of images in one forward pass: x is (N, 3, H, W), image n occupying the
    /// top-left `imageSizes[n]` (height, width) of its slot and zeros elsewhere (the padding of a batch of
    /// different sizes). Per image: RPN objectness (BCE over the sampled anchors) and box regression (smooth
    /// L1 over positives, normalised by the number of sampled anchors), then the box head's cross-entropy over
    /// the sampled RoIs and class-specific smooth L1 over the foreground ones (normalised by the number of
    /// sampled RoIs). The batch loss is the mean of the per-image losses, so one batched pass equals gradient
    /// accumulation over the same images (up to rounding and the padding's effect on the features).
    /// Image n's sampling draws from `rngs[n]`: first its anchors, then its RoIs.
    ///
    /// Approximate joint training: proposals are constants (no gradient flows through their coordinates).
    /// `fixedProposals` replaces the RPN's proposals (before the GT boxes are appended), which makes the
    /// loss a smooth function of the weights for gradient checks.
    public func losses(_ x: Tensor, targets: [TrainingTarget], imageSizes: [(height: Int, width: Int)], rngs: inout [SeededRNG],
                       fixedProposals: [Tensor]? = nil) -> (Tensor, LossBreakdown) {
        let n = x.shape[0]
        precondition(targets.count == n && imageSizes.count == n && rngs.count == n, "losses: \(n) images need as many targets, sizes and rngs")
        let features = backbone(x)
        let (logits, deltas) = rpn(features)
        // Anchor-major layouts of the whole batch: image b's anchors are rows [b*M, (b+1)*M).
        let objectness = channelsLast(logits).reshaped([-1])
        let deltaRows = channelsLast(deltas).reshaped([-1, 4])
        let anchors = anchorGenerator.anchors(featureHeight: features.shape[2], featureWidth: features.shape[3])
        let m = anchors.shape[0]
        let w = 1 / Float(n)
        var terms: [(Tensor, Float)] = []
        var parts = LossBreakdown()

        // RPN losses.
        for b in 0..<n {
            let target = targets[b]
            let (aLabels, aMatched) = rpnLabels(anchors: anchors, gt: target.boxes)
            let aSample = try! BalancedSampler(batchSizePerImage: config.rpn.batchSizePerImage, positiveFraction: config.rpn.positiveFraction)(aLabels, rng: &rngs[b])
            let sampled = aSample.positive + aSample.negative
            let nSampled = Float(max(sampled.count, 1))
            let objTargets = Tensor(sampled.map { aLabels[$0] > 0 ? 1 : 0 }, shape: [sampled.count])
            let rpnCls = binaryCrossEntropyWithLogits(gatherRows(objectness, sampled.map { b * m + $0 }), targets: objTargets)
            terms.append((rpnCls, w))
            parts.rpnCls += rpnCls.item() * w
            if !aSample.positive.isEmpty {
                let pos = aSample.positive
                let regTargets = BoxCoder.rpn.encode(selectRows(target.boxes, pos.map { aMatched[$0] }), relativeTo: selectRows(anchors, pos))
                let l = smoothL1(gatherRows(deltaRows, pos.map { b * m + $0 }), regTargets, beta: config.rpn.smoothL1Beta, reduction: .sum)
                terms.append((l, w / nSampled)); parts.rpnBox += l.item() * w / nSampled
            }
        }

        // A diverged RPN (non-finite outputs) ends here: the trainer reports the non-finite loss.
        if !(0..<objectness.count).allSatisfy({ objectness.data[$0].isFinite }) {
            parts.rpnCls = .nan
            return (weightedSum(terms), parts)
        }
        // Proposals per image from the detached RPN outputs (clipped to the image, not its padding), GT appended.
        let gen = ProposalGenerator(preNmsTopK: config.rpn.preNmsTopKTrain, postNmsTopK: config.rpn.postNmsTopKTrain,
                                    nmsThreshold: config.rpn.nmsThreshold, minSize: config.rpn.minSize)
        var roiBoxes: [Tensor] = [], roiImage: [Int] = [], perImage: [(labels: [Int], fg: Int, proposals: Tensor, rois: [Int], matched: [Int])] = []
        for b in 0..<n {
            let target = targets[b]
            var proposals: Tensor
            if let fixed = fixedProposals { proposals = fixed[b] } else {
                let rows = Array(b * m ..< (b + 1) * m)
                let out = AnchorOutputs(objectness: selectRows(objectness.detached(), rows), deltas: selectRows(deltaRows.detached(), rows))
                proposals = gen(out, anchors: anchors, imageSize: imageSizes[b]).boxes
            }
            if target.boxes.shape[0] > 0 { proposals = concatRows(proposals, target.boxes) }
            // RoI sampling.
            let (rLabels, rMatched) = roiLabels(proposals: proposals, target: target)
            let rSample = try! BalancedSampler(batchSizePerImage: config.roi.batchSizePerImage, positiveFraction: config.roi.positiveFraction)(rLabels, rng: &rngs[b])
            let rois = rSample.positive + rSample.negative
            perImage.append((rLabels, rSample.positive.count, proposals, rois, rMatched))
            if !rois.isEmpty {
                roiBoxes.append(selectRows(proposals, rois))
                roiImage += Array(repeating: b, count: rois.count)
            }
        }
        guard !roiImage.isEmpty else { return (weightedSum(terms), parts) }

        // One pass of the box head over the sampled RoIs of every image.
        let allBoxes = roiBoxes.dropFirst().reduce(roiBoxes[0]) { concatRows($0, $1) }
        let pooler = try! RoIPooler(kind: config.roi.pooler, outputSize: config.roi.resolution,
                                    spatialScale: 1.0 / Float(config.anchors.stride))
        let regions = pooler(features, rois: makeRoIs(boxes: allBoxes, batchIndices: roiImage))
        let (classLogits, boxDeltas) = roiHeads(regions)
        let k1 = config.numClasses + 1
        var first = 0
        for b in 0..<n {
            let (rLabels, nFg, proposals, rois, rMatched) = perImage[b]
            guard !rois.isEmpty else { continue }
            let rows = Array(first ..< first + rois.count)
            first += rois.count
            let logitsB = n == 1 ? classLogits : gatherRows(classLogits, rows)
            let roiCls = crossEntropy(logitsB, targets: rois.map { max(rLabels[$0], 0) })
            terms.append((roiCls, w)); parts.roiCls += roiCls.item() * w
            guard nFg > 0 else { continue }
            // Class-specific deltas of the foreground rows: row i's columns 4c..4c+3 for its class c.
            let picks = (0..<nFg).map { i in rows[i] * k1 + rLabels[rois[i]] }
            let pred = gatherRows(boxDeltas.reshaped([boxDeltas.shape[0] * k1, 4]), picks)
            let coder = try! BoxCoder(weights: config.roi.boxWeights)
            let fgIdx = Array(rois.prefix(nFg))
            let regTargets = coder.encode(selectRows(targets[b].boxes, fgIdx.map { rMatched[$0] }), relativeTo: selectRows(proposals, fgIdx))
            let l = smoothL1(pred, regTargets, beta: config.roi.smoothL1Beta, reduction: .sum)
            let norm = Float(rois.count)
            terms.append((l, w / norm)); parts.roiBox += l.item() * w / norm
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

import Foundation
import Engine
import NN
import ResNet
import Detection

/// The box predictor: class scores (K + 1 with background) and class-specific box deltas from pooled features.
public final class BoxPredictor: Module {
    public let clsScore: Linear, bboxPred: Linear
    init(inChannels c: Int, numClasses: Int, rng: inout SeededRNG) {
        clsScore = Linear(c, numClasses + 1, rng: &rng)
        bboxPred = Linear(c, 4 * (numClasses + 1), rng: &rng)
        super.init()
        for i in 0..<clsScore.weight.count { clsScore.weight.data[i] = rng.normal(std: 0.01) }
        for i in 0..<bboxPred.weight.count { bboxPred.weight.data[i] = rng.normal(std: 0.001) }
        clsScore.bias!.fill(0); bboxPred.bias!.fill(0)
    }
    public override var children: [(String, Module)] { [("cls_score", clsScore), ("bbox_pred", bboxPred)] }

    /// (R, C) -> class logits (R, K + 1), box deltas (R, 4(K + 1))
    public func callAsFunction(_ x: Tensor) -> (Tensor, Tensor) { (clsScore(x), bboxPred(x)) }
}

/// The per-region head of the C4 design (Detectron2's Res5ROIHeads): RoI pooling on the trunk's features, the
/// whole conv5_x stage (first block stride 2: 14x14 -> 7x7), global average pooling and the box predictor;
/// with RoI labelling and sampling, the two box-head losses and the test-time post-processing.
public final class Res5ROIHeads: Module {
    public private(set) var pooler: RoIPooler
    public let res5: Sequential
    public let predictor: BoxPredictor
    let sampler: BalancedSampler
    let boxCoder: BoxCoder
    let roi: DetectorConfig.RoI
    private(set) var test: DetectorConfig.Test
    private(set) var classNames: [String]

    init(pooler: RoIPooler, res5: Sequential, predictor: BoxPredictor, config: DetectorConfig) throws {
        self.pooler = pooler; self.res5 = res5; self.predictor = predictor
        roi = config.roi
        sampler = try BalancedSampler(batchSizePerImage: roi.batchSizePerImage, positiveFraction: roi.positiveFraction)
        boxCoder = try BoxCoder(weights: roi.boxWeights)
        test = config.test
        classNames = config.classNames
        super.init()
    }

    /// The checkpoint names: `roi_heads.res5.*`, `roi_heads.cls_score.*`, `roi_heads.bbox_pred.*`.
    public override var children: [(String, Module)] { [("res5", res5)] + predictor.children }

    /// Test-time settings (pooler, thresholds, detections per image) from `config`.
    func configure(_ config: DetectorConfig) throws {
        pooler = try RoIPooler(
            kind: config.roi.pooler, outputSize: config.roi.resolution, spatialScale: pooler.spatialScale)
        test = config.test
        classNames = config.classNames
    }

    /// pooled regions (R, C4, P, P) -> class logits (R, K + 1), box deltas (R, 4(K + 1))
    public func callAsFunction(_ regions: Tensor) -> (Tensor, Tensor) {
        if let plan = inferenceStages([res5]) {
            return predictor(globalAvgPoolChannelsLast(plan(toChannelsLast(regions))))
        }
        return predictor(globalAvgPool(ResNet.run(res5, regions)))
    }

    /// Whether the head runs on the channels-last inference path now (evaluation mode outside autograd), so
    /// that the pooler should give it channels-last regions (`callAsFunction(channelsLast:)`).
    public var takesChannelsLast: Bool { inferenceStages([res5]) != nil }

    /// pooled regions (R, P, P, C4), channels-last (only while `takesChannelsLast`) -> class logits, box deltas.
    public func callAsFunction(channelsLast regions: Tensor) -> (Tensor, Tensor) {
        guard let plan = inferenceStages([res5]) else { return self(toChannelsFirst(regions)) }
        return predictor(globalAvgPoolChannelsLast(plan(regions)))
    }

    /// Pools `boxes` (R, 4; image `batchIndices[r]` of the batch, all 0 when nil) from `features` and runs the head.
    public func callAsFunction(_ features: Tensor, boxes: Tensor, batchIndices: [Int]? = nil) -> (Tensor, Tensor) {
        let rois = batchIndices.map { makeRoIs(boxes: boxes, batchIndices: $0) } ?? makeRoIs(boxes: boxes)
        if takesChannelsLast { return self(channelsLast: pooler(features, rois: rois, channelsLast: true)) }
        return self(pooler(features, rois: rois))
    }

    /// RoI labels for one image's proposals (GT boxes appended by the caller): the GT class where the best
    /// IoU >= roi.fg_iou, 0 (background) where it is in [bg_iou_low, bg_iou_high), -1 (not sampled) below
    /// bg_iou_low; and the matched GT index.
    public func labels(proposals: Tensor, target: TrainingTarget) -> (labels: [Int], matched: [Int]) {
        let p = proposals.shape[0], g = target.boxes.shape[0]
        guard g > 0 else {
            return (Array(repeating: roi.bgIouLow > 0 ? -1 : 0, count: p), Array(repeating: -1, count: p))
        }
        let iou = pairwiseIoU(target.boxes, proposals)  // (G, P)
        var labels = [Int](repeating: -1, count: p), matched = [Int](repeating: -1, count: p)
        for j in 0..<p {
            var best: Float = -1, bi = 0
            for i in 0..<g where iou.data[i * p + j] > best { best = iou.data[i * p + j]; bi = i }
            matched[j] = bi
            if best >= roi.fgIou {
                labels[j] = target.labels[bi]
            } else if best >= roi.bgIouLow && best < roi.bgIouHigh {
                labels[j] = 0
            }
        }
        return (labels, matched)
    }

    /// Per image (weight `w` each): cross-entropy over the sampled RoIs and class-specific smooth L1 over the
    /// foreground ones (normalised by the number of sampled RoIs), in one head pass over every image's samples.
    /// `proposals[b]` has the GT boxes appended; image b samples from `rngs[b]`.
    func losses(
        _ features: Tensor, proposals: [Tensor], targets: [TrainingTarget], weight w: Float,
        rngs: inout [SeededRNG], into loss: inout LossTerms
    ) {
        var boxes: [Tensor] = [], imageOf: [Int] = []
        var samples: [(labels: [Int], fg: Int, rois: [Int], matched: [Int])] = []
        for (b, target) in targets.enumerated() {
            let (rLabels, rMatched) = labels(proposals: proposals[b], target: target)
            let rSample = sampler(rLabels, rng: &rngs[b])
            let rois = rSample.positive + rSample.negative
            samples.append((rLabels, rSample.positive.count, rois, rMatched))
            if !rois.isEmpty {
                boxes.append(selectRows(proposals[b], rois))
                imageOf += Array(repeating: b, count: rois.count)
            }
        }
        guard !imageOf.isEmpty else { return }
        let (classLogits, boxDeltas) = self(
            features, boxes: boxes.dropFirst().reduce(boxes[0]) { concatRows($0, $1) },
            batchIndices: imageOf)
        let k1 = classLogits.shape[1], n = targets.count
        var first = 0
        for (b, (rLabels, nFg, rois, rMatched)) in samples.enumerated() where !rois.isEmpty {
            let rows = Array(first..<first + rois.count)
            first += rois.count
            let cls = crossEntropy(
                n == 1 ? classLogits : gatherRows(classLogits, rows), targets: rois.map { max(rLabels[$0], 0) })
            loss.add(cls, w, to: \.roiCls)
            guard nFg > 0 else { continue }
            // Class-specific deltas of the foreground rows: row i's columns 4c..4c+3 for its class c.
            let picks = (0..<nFg).map { i in rows[i] * k1 + rLabels[rois[i]] }
            let pred = gatherRows(boxDeltas.reshaped([boxDeltas.shape[0] * k1, 4]), picks)
            let fg = Array(rois.prefix(nFg))
            let regTargets = boxCoder.encode(
                selectRows(targets[b].boxes, fg.map { rMatched[$0] }), relativeTo: selectRows(proposals[b], fg))
            let l = smoothL1(pred, regTargets, beta: roi.smoothL1Beta, reduction: .sum)
            loss.add(l, w, over: Float(rois.count), to: \.roiBox)
        }
    }

    /// torchvision's postprocess_detections for one image: softmax, per-class decode (weights from the
    /// config, clamped), clip, drop background, score > threshold, drop tiny boxes, per-class NMS, top N
    /// by score; then map to original pixels.
    func postprocess(
        classLogits: Tensor, boxDeltas: Tensor, proposals: Tensor, inputSize: (height: Int, width: Int),
        scaleX: Float, scaleY: Float
    ) -> [DetectedObject] {
        let r = classLogits.shape[0], k1 = classLogits.shape[1]
        let probs = softmax(classLogits)
        let boxes = clipBoxes(boxCoder.decode(boxDeltas, relativeTo: proposals).reshaped([r * k1, 4]), to: inputSize)
        var candidates: [Int] = [], labels: [Int] = []
        for i in 0..<r {
            for c in 1..<k1 where probs.data[i * k1 + c] > test.scoreThreshold {
                candidates.append(i * k1 + c); labels.append(c)
            }
        }
        let candBoxes = selectRows(boxes, candidates)
        let big = removeSmall(candBoxes, minSize: 1e-2)
        let keptBoxes = selectRows(candBoxes, big)
        let keptScores = Tensor(big.map { probs.data[candidates[$0]] }, shape: [big.count])
        let keep = batchedNMS(
            keptBoxes, scores: keptScores, classes: big.map { labels[$0] },
            iouThreshold: Double(test.nmsThreshold), maxOutputs: test.detectionsPerImage)
        return keep.map { j in
            let b = keptBoxes.data + 4 * j
            let label = labels[big[j]]
            return DetectedObject(
                corners: [b[0] / scaleX, b[1] / scaleY, b[2] / scaleX, b[3] / scaleY], score: keptScores.data[j],
                label: label, name: label - 1 < classNames.count ? classNames[label - 1] : "class \(label)")
        }
    }
}

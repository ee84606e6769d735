import Foundation
import Engine
import NN
import ResNet
import Detection

/// The RPN head: a 3x3 conv + ReLU on the trunk output, then sibling 1x1 convs for one objectness logit
/// per anchor and 4 box deltas per anchor (channels 4a..4a+3 belong to anchor a).
public final class RPNHead: Module {
    public let conv: Conv2d, clsLogits: Conv2d, bboxPred: Conv2d
    init(channels: Int, anchors: Int, rng: inout SeededRNG) {
        conv = Conv2d(channels, channels, kernel: 3, padding: 1, bias: true, rng: &rng)
        clsLogits = Conv2d(channels, anchors, kernel: 1, bias: true, rng: &rng)
        bboxPred = Conv2d(channels, 4 * anchors, kernel: 1, bias: true, rng: &rng)
        super.init()
        for c in [conv, clsLogits, bboxPred] {  // torchvision: normal(std 0.01), bias 0
            for i in 0..<c.weight.count { c.weight.data[i] = rng.normal(std: 0.01) }
            c.bias!.fill(0)
        }
    }
    public override var children: [(String, Module)] {
        [("conv", conv), ("cls_logits", clsLogits), ("bbox_pred", bboxPred)]
    }

    /// features (N, C, H, W) -> objectness (N, A, H, W), deltas (N, 4A, H, W)
    public func callAsFunction(_ features: Tensor) -> (Tensor, Tensor) {
        let t = relu(conv(features))
        return (clsLogits(t), bboxPred(t))
    }

    /// The head prepared for inference (`InferencePath`): the 3x3 convolution with its bias and ReLU fused, and
    /// the two sibling 1x1 convolutions as one (their weights stacked), on channels-last tensors.
    final class Plan {
        let conv: PackedConv, siblings: PackedConv
        let anchors: Int

        init(_ head: RPNHead) {
            let c = head.conv
            conv = PackedConv(weight: c.weight, bias: c.bias?.scalars, stride: c.stride, padding: c.padding)
            anchors = head.clsLogits.weight.shape[0]
            let both = Tensor(uninitialized: [5 * anchors] + Array(head.clsLogits.weight.shape.dropFirst()))
            both.data.update(from: head.clsLogits.weight.data, count: head.clsLogits.weight.count)
            (both.data + head.clsLogits.weight.count).update(
                from: head.bboxPred.weight.data, count: head.bboxPred.weight.count)
            let bias =
                (head.clsLogits.bias?.scalars ?? [Float](repeating: 0, count: anchors))
                + (head.bboxPred.bias?.scalars ?? [Float](repeating: 0, count: 4 * anchors))
            siblings = PackedConv(weight: both, bias: bias, stride: (1, 1), padding: (0, 0))
        }

        func callAsFunction(_ features: Tensor) -> (Tensor, Tensor) {
            let y = toChannelsFirst(siblings(conv(toChannelsLast(features), relu: true), relu: false))
            let n = y.shape[0], hw = y.shape[2] * y.shape[3], a = anchors
            let cls = Tensor(uninitialized: [n, a, y.shape[2], y.shape[3]])
            let deltas = Tensor(uninitialized: [n, 4 * a, y.shape[2], y.shape[3]])
            for b in 0..<n {
                (cls.data + b * a * hw).update(from: y.data + b * 5 * a * hw, count: a * hw)
                (deltas.data + b * 4 * a * hw).update(from: y.data + (b * 5 + 1) * a * hw, count: 4 * a * hw)
            }
            return (cls, deltas)
        }
    }
}

/// The region proposal network: its head, the anchors, proposal selection (training and test settings),
/// anchor labelling and sampling, and its two losses. Built once from the detector's config; `configure`
/// applies changed test-time settings.
public final class RPN: Module {
    public let head: RPNHead
    public let anchorGenerator: AnchorGenerator
    public private(set) var trainingSelection: ProposalGenerator
    public private(set) var testSelection: ProposalGenerator
    let matcher: Matcher
    let sampler: BalancedSampler
    let smoothL1Beta: Float

    init(_ config: DetectorConfig, inChannels: Int, rng: inout SeededRNG) throws {
        let a = config.anchors, r = config.rpn
        head = RPNHead(channels: inChannels, anchors: a.sizes.count * a.aspectRatios.count, rng: &rng)
        anchorGenerator = try AnchorGenerator(
            sizes: a.sizes, aspectRatios: a.aspectRatios, stride: a.stride, convention: a.convention)
        trainingSelection = ProposalGenerator(
            preNmsTopK: r.preNmsTopKTrain, postNmsTopK: r.postNmsTopKTrain,
            nmsThreshold: r.nmsThreshold, minSize: r.minSize)
        testSelection = ProposalGenerator(
            preNmsTopK: r.preNmsTopKTest, postNmsTopK: r.postNmsTopKTest,
            nmsThreshold: r.nmsThreshold, minSize: r.minSize)
        matcher = try Matcher(highThreshold: r.fgIou, lowThreshold: r.bgIou, allowLowQualityMatches: true)
        sampler = try BalancedSampler(batchSizePerImage: r.batchSizePerImage, positiveFraction: r.positiveFraction)
        smoothL1Beta = r.smoothL1Beta
        super.init()
    }

    /// The checkpoint names are the head's: `rpn.conv.*`, `rpn.cls_logits.*`, `rpn.bbox_pred.*`.
    public override var children: [(String, Module)] { head.children }

    /// Test-time settings (proposal counts, NMS threshold, minimum size) from `config`.
    func configure(_ config: DetectorConfig) {
        let r = config.rpn
        testSelection = ProposalGenerator(
            preNmsTopK: r.preNmsTopKTest, postNmsTopK: r.postNmsTopKTest,
            nmsThreshold: r.nmsThreshold, minSize: r.minSize)
    }

    /// features (N, C, H, W) -> objectness (N, A, H, W), deltas (N, 4A, H, W). In evaluation mode outside autograd
    /// (`InferencePath.enabled`) through the head's channels-last plan, kept on this module (the head is not a
    /// module of the tree: its layers are this module's children, so its own mode and plans would go stale).
    public func callAsFunction(_ features: Tensor) -> (Tensor, Tensor) {
        if takesChannelsLast, let plan = inferencePlan({ RPNHead.Plan(head) }) { return plan(features) }
        return head(features)
    }

    /// Whether the head runs on the channels-last inference path now.
    public var takesChannelsLast: Bool { InferencePath.enabled && !training && !GradMode.isEnabled }

    /// The anchors of a feature map, (H*W*A, 4) in input pixels.
    public func anchors(for features: Tensor) -> Tensor {
        anchorGenerator.anchors(featureHeight: features.shape[2], featureWidth: features.shape[3])
    }

    /// Proposals of one image at test time, best first, and their objectness logits.
    public func proposals(
        logits: Tensor, deltas: Tensor, anchors: Tensor,
        imageSize: (height: Int, width: Int)
    ) -> (boxes: Tensor, scores: [Float]) {
        testSelection(AnchorOutputs(logits: logits, deltas: deltas), anchors: anchors, imageSize: imageSize)
    }

    /// Anchor labels for one image: 1 where an anchor's IoU with some GT is >= fg_iou (plus each GT's best
    /// anchors), 0 where its best IoU is < bg_iou, -1 (ignored) in between; and the matched GT per anchor
    /// (-1 where none). No GT: every anchor is background.
    public func labels(anchors: Tensor, gt: Tensor) -> (labels: [Int], matched: [Int]) {
        let a = anchors.shape[0]
        guard gt.shape[0] > 0 else { return (Array(repeating: 0, count: a), Array(repeating: -1, count: a)) }
        let m = matcher(pairwiseIoU(gt, anchors))
        return (Matcher.labels(from: m), m.map { max($0, -1) })
    }

    /// The batch's RPN outputs in anchor-major rows: image b's anchors are rows [b*M, (b+1)*M).
    struct Rows {
        let objectness: Tensor, deltas: Tensor
        init(logits: Tensor, deltas d: Tensor) {
            objectness = channelsLast(logits).reshaped([-1])
            deltas = channelsLast(d).reshaped([-1, 4])
        }
        var isFinite: Bool { (0..<objectness.count).allSatisfy { objectness.data[$0].isFinite } }
    }

    /// Per image: objectness (BCE over the sampled anchors) and box regression (smooth L1 over positives,
    /// normalised by the number of sampled anchors), each weighted by `weight`. Image b samples from `rngs[b]`.
    func losses(
        _ rows: Rows, anchors: Tensor, targets: [TrainingTarget], weight w: Float, rngs: inout [SeededRNG],
        into loss: inout LossTerms
    ) {
        let m = anchors.shape[0]
        for (b, target) in targets.enumerated() {
            let (aLabels, aMatched) = labels(anchors: anchors, gt: target.boxes)
            let aSample = sampler(aLabels, rng: &rngs[b])
            let sampled = aSample.positive + aSample.negative
            let nSampled = Float(max(sampled.count, 1))
            let objTargets = Tensor(sampled.map { aLabels[$0] > 0 ? 1 : 0 }, shape: [sampled.count])
            let cls = binaryCrossEntropyWithLogits(
                gatherRows(rows.objectness, sampled.map { b * m + $0 }), targets: objTargets)
            loss.add(cls, w, to: \.rpnCls)
            guard !aSample.positive.isEmpty else { continue }
            let pos = aSample.positive
            let regTargets = BoxCoder.rpn.encode(
                selectRows(target.boxes, pos.map { aMatched[$0] }), relativeTo: selectRows(anchors, pos))
            let l = smoothL1(
                gatherRows(rows.deltas, pos.map { b * m + $0 }), regTargets, beta: smoothL1Beta, reduction: .sum)
            loss.add(l, w, over: nSampled, to: \.rpnBox)
        }
    }

    /// Training proposals of each image from the detached outputs, clipped to the image (not its padding).
    func trainingProposals(_ rows: Rows, anchors: Tensor, imageSizes: [(height: Int, width: Int)]) -> [Tensor] {
        let m = anchors.shape[0]
        return imageSizes.enumerated().map { b, size in
            let r = Array(b * m..<(b + 1) * m)
            let out = AnchorOutputs(
                objectness: selectRows(rows.objectness.detached(), r), deltas: selectRows(rows.deltas.detached(), r))
            return trainingSelection(out, anchors: anchors, imageSize: size).boxes
        }
    }
}

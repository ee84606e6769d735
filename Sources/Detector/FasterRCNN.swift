import Foundation
import Detection
import Engine
import NN
import ResNet
import Support

/// Faster R-CNN with a ResNet "C4" backbone (ResNet paper, appendix A). Checkpoint names:
/// `backbone.{conv1,bn1,layer1,layer2,layer3}.*`, `rpn.{conv,cls_logits,bbox_pred}.*`,
/// `roi_heads.res5.{0,1,2}.*`, `roi_heads.{cls_score,bbox_pred}.*`.
public final class FasterRCNN: Module {
    /// The one config of the detector; `apply(testSettings:)` changes its test-time part.
    public private(set) var config: DetectorConfig
    public let backbone: Trunk
    public let rpn: RPN
    public let roiHeads: Res5ROIHeads

    public init(_ config: DetectorConfig, seed: UInt64 = 0) throws {
        try config.validate()
        self.config = config
        var rc = try ResNetConfig.named("resnet\(config.backbone.depth)")
        if !config.backbone.widths.isEmpty { rc.widths = config.backbone.widths }
        rc.stemWidth = config.backbone.stemWidth
        rc.strideInFirst1x1 = config.backbone.strideInFirstConv
        // A whole ResNet is initialised (as torchvision does) and split: conv1..layer3 the trunk, layer4 res5.
        let net = ResNet(rc, seed: seed)
        var rng = SeededRNG(seed: seed &+ 1)
        backbone = Trunk(net)
        rpn = try RPN(config, inChannels: backbone.outChannels, rng: &rng)
        let predictor = BoxPredictor(inChannels: rc.outputChannels, numClasses: config.numClasses, rng: &rng)
        let pooler = try RoIPooler(
            kind: config.roi.pooler, outputSize: config.roi.resolution,
            spatialScale: 1.0 / Float(config.anchors.stride))
        roiHeads = try Res5ROIHeads(pooler: pooler, res5: net.stages[3], predictor: predictor, config: config)
        super.init()
        applyFreezing()
    }

    public override var children: [(String, Module)] { [("backbone", backbone), ("rpn", rpn), ("roi_heads", roiHeads)] }

    /// Frozen batch norm everywhere (a fixed affine map, as in the paper), and frozen stem / first stages
    /// per `backbone.freeze_at`.
    public func applyFreezing() {
        for (_, m) in namedModules() { if let bn = m as? BatchNorm2d { bn.frozen = true } }
        let fa = config.backbone.freezeAt
        if fa >= 1 { backbone.conv1.freeze() }
        let stages = backbone.stages + [roiHeads.res5]
        for i in 0..<min(max(fa - 1, 0), 4) { stages[i].freeze() }
    }

    /// Takes the test-time settings of `settings` (input, rpn.*_test, roi.pooler, test.*, class names); the
    /// trained structure must be the same.
    public func apply(testSettings settings: DetectorConfig) throws {
        guard settings.backbone == config.backbone, settings.anchors == config.anchors,
            settings.classNames.count == config.classNames.count, settings.roi.resolution == config.roi.resolution
        else {
            throw DetectorError(
                "only test-time settings (test.*, input.*, rpn.*_test, roi.pooler) can change for a trained detector")
        }
        rpn.configure(settings)
        try roiHeads.configure(settings)
        config = settings
    }

    /// What the stages of one inference pass produced (for tests and tracing).
    public struct Trace {
        public var proposals: Tensor
        public var proposalScores: [Float]
        public var classLogits: Tensor
        public var boxDeltas: Tensor
        public var objects: [DetectedObject]
    }

    /// Inference on a prepared image: trunk, RPN proposals, box head on the pooled proposals, post-processing.
    public func detect(_ p: PreparedImage) -> Trace {
        let size = (height: p.tensor.shape[2], width: p.tensor.shape[3])
        let features = backbone(p.tensor)
        let (logits, deltas) = rpn(features)
        let (proposals, scores) = rpn.proposals(
            logits: logits, deltas: deltas, anchors: rpn.anchors(for: features), imageSize: size)
        guard proposals.shape[0] > 0 else {
            return Trace(
                proposals: proposals, proposalScores: [], classLogits: Tensor(zeros: [0, config.numClasses + 1]),
                boxDeltas: Tensor(zeros: [0, 4 * (config.numClasses + 1)]), objects: [])
        }
        let (classLogits, boxDeltas) = roiHeads(features, boxes: proposals)
        let objects = roiHeads.postprocess(
            classLogits: classLogits, boxDeltas: boxDeltas, proposals: proposals,
            inputSize: size, scaleX: p.scaleX, scaleY: p.scaleY)
        return Trace(
            proposals: proposals, proposalScores: scores, classLogits: classLogits, boxDeltas: boxDeltas,
            objects: objects)
    }

    /// The training loss of one image (x: (1, 3, H, W)); see `losses(_:targets:imageSizes:rngs:fixedProposals:)`.
    public func losses(_ x: Tensor, target: TrainingTarget, rng: inout SeededRNG, fixedProposals: Tensor? = nil) -> (
        Tensor, LossBreakdown
    ) {
        var rngs = [rng]
        defer { rng = rngs[0] }
        return losses(
            x, targets: [target], imageSizes: [(x.shape[2], x.shape[3])], rngs: &rngs,
            fixedProposals: fixedProposals.map { [$0] })
    }

    /// The training loss of a batch of images in one forward pass: x is (N, 3, H, W), image n occupying the
    /// top-left `imageSizes[n]` (height, width) of its slot and zeros elsewhere (the padding of a batch of
    /// different sizes). The RPN's and the box head's losses per image (see `RPN.losses`, `Res5ROIHeads.losses`);
    /// the batch loss is the mean of the per-image losses, so one batched pass equals gradient accumulation over
    /// the same images (up to rounding and the padding's effect on the features). Image n's sampling draws from
    /// `rngs[n]`: first its anchors, then its RoIs.
    ///
    /// Approximate joint training: proposals are constants (no gradient flows through their coordinates).
    /// `fixedProposals` replaces the RPN's proposals (before the GT boxes are appended), which makes the
    /// loss a smooth function of the weights for gradient checks.
    public func losses(
        _ x: Tensor, targets: [TrainingTarget], imageSizes: [(height: Int, width: Int)], rngs: inout [SeededRNG],
        fixedProposals: [Tensor]? = nil
    ) -> (Tensor, LossBreakdown) {
        let n = x.shape[0], w = 1 / Float(n)
        precondition(
            targets.count == n && imageSizes.count == n && rngs.count == n,
            "losses: \(n) images need as many targets, sizes and rngs")
        let features = backbone(x)
        let (logits, deltas) = rpn(features)
        let rows = RPN.Rows(logits: logits, deltas: deltas), anchors = rpn.anchors(for: features)
        var loss = LossTerms()
        rpn.losses(rows, anchors: anchors, targets: targets, weight: w, rngs: &rngs, into: &loss)
        // A diverged RPN (non-finite outputs) ends here: the trainer reports the non-finite loss.
        guard rows.isFinite else { loss.parts.rpnCls = .nan; return (loss.total, loss.parts) }
        let proposals = zip(
            fixedProposals ?? rpn.trainingProposals(rows, anchors: anchors, imageSizes: imageSizes), targets
        )
        .map { p, t in t.boxes.shape[0] > 0 ? concatRows(p, t.boxes) : p }
        roiHeads.losses(features, proposals: proposals, targets: targets, weight: w, rngs: &rngs, into: &loss)
        return (loss.total, loss.parts)
    }

    /// Metadata stored with checkpoints: the whole config (class names included).
    public var metadata: [String: String] {
        ["format": "faster-rcnn-c4-swift/1", "arch": "faster_rcnn_r\(config.backbone.depth)_c4",
         "detector_config": Recipe.json(config),
         "classes": (try? String(data: JSONEncoder().encode(config.classNames), encoding: .utf8)) ?? "[]"]
    }

    /// The config stored in a detector checkpoint. Keys the checkpoint lacks (written before a key was
    /// added) take their defaults; keys this version does not know are refused.
    public static func config(from metadata: [String: String], file: String) throws -> DetectorConfig {
        guard let s = metadata["detector_config"] else {
            throw DetectorError("\(file): not a detector checkpoint (no detector_config in its metadata)")
        }
        do { return try Recipe.decode(DetectorConfig(), json: s, source: "detector_config") }
        catch { throw DetectorError("\(file): detector_config in the metadata is invalid (\(error))") }
    }
}

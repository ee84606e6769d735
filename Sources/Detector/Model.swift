import Foundation
import Detection
import Engine
import NN
import ResNet

/// The shared trunk: ResNet conv1 .. conv4_x (stride 16), torchvision names under `backbone.`.
public final class Trunk: Module {
    let net: ResNet
    init(_ net: ResNet) { self.net = net; super.init() }
    public override var children: [(String, Module)] {
        [("conv1", net.conv1), ("bn1", net.bn1), ("layer1", net.stages[0]), ("layer2", net.stages[1]), ("layer3", net.stages[2])]
    }
    public var outChannels: Int { net.config.widths[2] * net.config.expansion }

    /// (N, 3, H, W) -> (N, C4, ceil(H/16), ceil(W/16))
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = net.stem(x)
        for i in 0..<3 { h = net.stage(i, h) }
        return h
    }
}

/// The RPN head: a 3x3 conv + ReLU on the trunk output, then sibling 1x1 convs for one objectness logit
/// per anchor and 4 box deltas per anchor (channels 4a..4a+3 belong to anchor a).
public final class RPNHead: Module {
    public let conv: Conv2d, clsLogits: Conv2d, bboxPred: Conv2d
    init(channels: Int, anchors: Int, rng: inout SeededRNG) {
        conv = Conv2d(channels, channels, kernel: 3, padding: 1, bias: true, rng: &rng)
        clsLogits = Conv2d(channels, anchors, kernel: 1, bias: true, rng: &rng)
        bboxPred = Conv2d(channels, 4 * anchors, kernel: 1, bias: true, rng: &rng)
        super.init()
        for c in [conv, clsLogits, bboxPred] {   // torchvision: normal(std 0.01), bias 0
            for i in 0..<c.weight.count { c.weight.data[i] = rng.normal(std: 0.01) }
            c.bias!.fill(0)
        }
    }
    public override var children: [(String, Module)] { [("conv", conv), ("cls_logits", clsLogits), ("bbox_pred", bboxPred)] }

    /// features (N, C, H, W) -> objectness (N, A, H, W), deltas (N, 4A, H, W)
    public func callAsFunction(_ features: Tensor) -> (Tensor, Tensor) {
        let t = relu(conv(features))
        return (clsLogits(t), bboxPred(t))
    }
}

/// The per-region head of the C4 design: the whole conv5_x stage (first block stride 2: 14x14 -> 7x7),
/// global average pooling, then class scores (K + 1 with background) and class-specific box deltas.
public final class Res5Head: Module {
    public let res5: Sequential
    let net: ResNet
    public let clsScore: Linear, bboxPred: Linear
    init(_ net: ResNet, numClasses: Int, rng: inout SeededRNG) {
        self.net = net
        res5 = net.stages[3]
        let c = net.config.outputChannels
        clsScore = Linear(c, numClasses + 1, rng: &rng)
        bboxPred = Linear(c, 4 * (numClasses + 1), rng: &rng)
        super.init()
        for i in 0..<clsScore.weight.count { clsScore.weight.data[i] = rng.normal(std: 0.01) }
        for i in 0..<bboxPred.weight.count { bboxPred.weight.data[i] = rng.normal(std: 0.001) }
        clsScore.bias!.fill(0); bboxPred.bias!.fill(0)
    }
    public override var children: [(String, Module)] { [("res5", res5), ("cls_score", clsScore), ("bbox_pred", bboxPred)] }

    /// pooled regions (R, C4, P, P) -> class logits (R, K + 1), box deltas (R, 4(K + 1))
    public func callAsFunction(_ regions: Tensor) -> (Tensor, Tensor) {
        let f = globalAvgPool(net.stage(3, regions))
        return (clsScore(f), bboxPred(f))
    }
}

/// Faster R-CNN with a ResNet "C4" backbone (ResNet paper, appendix A). Checkpoint names:
/// `backbone.{conv1,bn1,layer1,layer2,layer3}.*`, `rpn.{conv,cls_logits,bbox_pred}.*`,
/// `roi_heads.res5.{0,1,2}.*`, `roi_heads.{cls_score,bbox_pred}.*`.
public final class FasterRCNN: Module {
    public let config: DetectorConfig
    public let resnet: ResNet
    public let backbone: Trunk
    public let rpn: RPNHead
    public let roiHeads: Res5Head

    public init(_ config: DetectorConfig, seed: UInt64 = 0) throws {
        try config.validate()
        self.config = config
        var rc = try ResNetConfig.named("resnet\(config.backbone.depth)")
        if !config.backbone.widths.isEmpty { rc.widths = config.backbone.widths }
        rc.stemWidth = config.backbone.stemWidth
        rc.strideInFirst1x1 = config.backbone.strideInFirstConv
        resnet = ResNet(rc, seed: seed)
        var rng = SeededRNG(seed: seed &+ 1)
        backbone = Trunk(resnet)
        rpn = RPNHead(channels: backbone.outChannels, anchors: config.anchors.sizes.count * config.anchors.aspectRatios.count, rng: &rng)
        roiHeads = Res5Head(resnet, numClasses: config.numClasses, rng: &rng)
        super.init()
        applyFreezing()
    }

    public override var children: [(String, Module)] { [("backbone", backbone), ("rpn", rpn), ("roi_heads", roiHeads)] }

    /// Frozen batch norm everywhere (a fixed affine map, as in the paper), and frozen stem / first stage
    /// per `backbone.freeze_at`.
    public func applyFreezing() {
        for (_, m) in namedModules() { if let bn = m as? BatchNorm2d { bn.frozen = true } }
        let fa = config.backbone.freezeAt
        if fa >= 1 { resnet.conv1.freeze() }
        for i in 0..<min(max(fa - 1, 0), 4) { resnet.stages[i].freeze() }
    }

    /// Metadata stored with checkpoints: the whole config (class names included).
    public var metadata: [String: String] {
        let enc = JSONEncoder(); enc.keyEncodingStrategy = .convertToSnakeCase; enc.outputFormatting = [.sortedKeys]
        let cfg = (try? String(data: enc.encode(config), encoding: .utf8)) ?? "{}"
        return ["format": "faster-rcnn-c4-swift/1", "arch": "faster_rcnn_r\(config.backbone.depth)_c4",
                "detector_config": cfg,
                "classes": (try? String(data: JSONEncoder().encode(config.classNames), encoding: .utf8)) ?? "[]"]
    }

    /// The config stored in a detector checkpoint. Keys the checkpoint lacks (written before a key was
    /// added) take their defaults; keys this version does not know are refused.
    public static func config(from metadata: [String: String], file: String) throws -> DetectorConfig {
        guard let s = metadata["detector_config"], let d = s.data(using: .utf8) else {
            throw DetectorError("\(file): not a detector checkpoint (no detector_config in its metadata)")
        }
        let enc = JSONEncoder(); enc.keyEncodingStrategy = .convertToSnakeCase
        let dec = JSONDecoder(); dec.keyDecodingStrategy = .convertFromSnakeCase
        do {
            guard let stored = try JSONSerialization.jsonObject(with: d) as? [String: Any],
                  var tree = try JSONSerialization.jsonObject(with: enc.encode(DetectorConfig())) as? [String: Any] else {
                throw DetectorError("not a JSON object")
            }
            try mergeConfig(&tree, stored, path: "")
            return try dec.decode(DetectorConfig.self, from: JSONSerialization.data(withJSONObject: tree))
        } catch { throw DetectorError("\(file): detector_config in the metadata is invalid (\(error))") }
    }

    private static func mergeConfig(_ dst: inout [String: Any], _ src: [String: Any], path: String) throws {
        for (k, v) in src {
            guard let existing = dst[k] else { throw DetectorError("unknown key \"\(path)\(k)\"") }
            if var sub = existing as? [String: Any], let vs = v as? [String: Any] {
                try mergeConfig(&sub, vs, path: path + k + ".")
                dst[k] = sub
            } else {
                dst[k] = v
            }
        }
    }
}

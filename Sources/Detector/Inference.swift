import Foundation
import Engine
import NN
import Imaging
import Detection
import Support
import WeightImport

/// The detector ready for inference: checkpoint loaded, batch norm folded, no tape.
/// `detect` composes the stages: preprocess -> trunk -> RPN -> proposals -> RoI pooling -> res5 head ->
/// per-class decode, threshold and NMS -> boxes in original pixels.
public struct DetectorRunner {
    public let model: FasterRCNN
    /// Test-time settings (thresholds, input size) may be changed after loading.
    public var config: DetectorConfig

    public init(model: FasterRCNN) {
        self.model = model
        self.config = model.config
        model.eval()
    }

    /// Loads a detector from any supported file: a safetensors checkpoint (its metadata holds the config and
    /// the class names), or a Detectron2 C4 `.pkl` / `.pth` converted in memory (its config comes from the
    /// conversion). The one loader of `detect`, `evaluate` and the tests.
    public init(checkpoint url: URL) throws {
        let file = try CheckpointImport.open(url, arch: nil)
        let cfg = try FasterRCNN.config(from: file.metadata, file: url.path)
        let model = try FasterRCNN(cfg)
        do { try model.load(file) }
        catch let e as CheckpointError { throw CheckpointError(file: e.file, e.message + " (expected a Faster R-CNN R\(cfg.backbone.depth)-C4 with \(cfg.numClasses) classes)") }
        self.init(model: model)
    }

    /// Applies a YAML file of overrides (any config key, e.g. test.score_threshold or input.min_size).
    public mutating func applyOverrides(yaml: URL) throws {
        let updated = try Recipe.load(config, file: yaml)
        guard updated.classNames == config.classNames, updated.backbone == config.backbone, updated.anchors == config.anchors else {
            throw DetectorError("\(yaml.path): only test-time settings (test.*, input.*, rpn.*_test, roi.pooler) can be overridden for a trained detector")
        }
        config = updated
    }

    /// Runs the whole detector on one image; boxes are in the image's own pixel coordinates.
    public func detect(_ image: RGBImage) throws -> [DetectedObject] {
        let prepared = try Preprocess.prepare(image, input: config.input)
        return GradMode.withoutGrad { detect(prepared) }
    }

    /// The stages on a prepared input. Also returns the intermediate results for tests.
    public func detect(_ p: PreparedImage) -> [DetectedObject] { run(p).objects }

    public struct Trace {
        public var proposals: Tensor
        public var proposalScores: [Float]
        public var classLogits: Tensor
        public var boxDeltas: Tensor
        public var objects: [DetectedObject]
    }

    public func run(_ p: PreparedImage) -> Trace {
        let x = p.tensor
        let inputSize = (height: x.shape[2], width: x.shape[3])
        let features = model.backbone(x)
        let (logits, deltas) = model.rpn(features)
        let anchors = try! AnchorGenerator(sizes: config.anchors.sizes, aspectRatios: config.anchors.aspectRatios,
                                           stride: config.anchors.stride,
                                           convention: config.anchors.convention)
            .anchors(featureHeight: features.shape[2], featureWidth: features.shape[3])
        let gen = ProposalGenerator(preNmsTopK: config.rpn.preNmsTopKTest, postNmsTopK: config.rpn.postNmsTopKTest,
                                    nmsThreshold: config.rpn.nmsThreshold, minSize: config.rpn.minSize)
        let (proposals, scores) = gen(AnchorOutputs(logits: logits, deltas: deltas), anchors: anchors, imageSize: inputSize)
        guard proposals.shape[0] > 0 else {
            return Trace(proposals: proposals, proposalScores: [], classLogits: Tensor(zeros: [0, config.numClasses + 1]),
                         boxDeltas: Tensor(zeros: [0, 4 * (config.numClasses + 1)]), objects: [])
        }
        let pooler = try! RoIPooler(kind: config.roi.pooler, outputSize: config.roi.resolution,
                                    spatialScale: 1.0 / Float(config.anchors.stride))
        let regions = pooler(features, rois: makeRoIs(boxes: proposals))
        let (classLogits, boxDeltas) = model.roiHeads(regions)
        let objects = postprocess(classLogits: classLogits, boxDeltas: boxDeltas, proposals: proposals, inputSize: inputSize,
                                  scaleX: p.scaleX, scaleY: p.scaleY)
        return Trace(proposals: proposals, proposalScores: scores, classLogits: classLogits, boxDeltas: boxDeltas, objects: objects)
    }

    /// torchvision's postprocess_detections for one image: softmax, per-class decode (weights from the
    /// config, clamped), clip, drop background, score > threshold, drop tiny boxes, per-class NMS, top N
    /// by score; then map to original pixels.
    func postprocess(classLogits: Tensor, boxDeltas: Tensor, proposals: Tensor, inputSize: (height: Int, width: Int),
                     scaleX: Float, scaleY: Float) -> [DetectedObject] {
        let r = classLogits.shape[0], k1 = classLogits.shape[1]
        let probs = softmax(classLogits)
        let coder = try! BoxCoder(weights: config.roi.boxWeights)
        let boxes = clipBoxes(coder.decode(boxDeltas, relativeTo: proposals).reshaped([r * k1, 4]), to: inputSize)
        var candidates: [Int] = [], labels: [Int] = []
        for i in 0..<r {
            for c in 1..<k1 where probs.data[i * k1 + c] > config.test.scoreThreshold {
                candidates.append(i * k1 + c); labels.append(c)
            }
        }
        let candBoxes = selectRows(boxes, candidates)
        let big = removeSmall(candBoxes, minSize: 1e-2)
        let keptBoxes = selectRows(candBoxes, big)
        let keptScores = Tensor(big.map { probs.data[candidates[$0]] }, shape: [big.count])
        let keep = batchedNMS(keptBoxes, scores: keptScores, classes: big.map { labels[$0] },
                              iouThreshold: Double(config.test.nmsThreshold), maxOutputs: config.test.detectionsPerImage)
        return keep.map { j in
            let b = keptBoxes.data + 4 * j
            let label = labels[big[j]]
            return DetectedObject(box: [b[0] / scaleX, b[1] / scaleY, b[2] / scaleX, b[3] / scaleY], score: keptScores.data[j],
                                  label: label, name: label - 1 < config.classNames.count ? config.classNames[label - 1] : "class \(label)")
        }
    }
}

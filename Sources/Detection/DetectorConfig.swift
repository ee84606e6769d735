import Foundation
import Support

/// Every hyper-parameter of the Faster R-CNN ResNet-C4 detector, named once. Decoded one-to-one from YAML
/// recipes (`configs/detector_*.yaml`) and stored as JSON in checkpoint metadata, so a checkpoint alone
/// is enough to run `detect`. Defaults follow the ResNet paper / py-faster-rcnn where the reference
/// table disagrees between implementations.
public struct DetectorConfig: Codable, Equatable, Sendable {
    public var backbone = Backbone()
    public var anchors = Anchors()
    public var rpn = RPN()
    public var roi = RoI()
    public var test = Test()
    public var input = Input()
    /// Object class names (without background); the head predicts classNames.count + 1 classes.
    public var classNames: [String] = []
    /// The data set's category id of each class, in class order (COCO's ids have gaps: 1...90 for 80
    /// classes); results JSON uses them. Empty = 1...K.
    public var categoryIds: [Int] = []

    /// The category id written for head label `label` (1...K).
    public func categoryId(label: Int) -> Int {
        categoryIds.count == classNames.count && label >= 1 && label <= categoryIds.count
            ? categoryIds[label - 1] : label
    }

    public struct Backbone: Codable, Equatable, Sendable {
        /// ResNet depth: 18, 34, 50, 101 or 152 (101 is the paper's).
        public var depth = 101
        /// Bottleneck stride on the first 1x1 (MSRA/Caffe/Detectron2 weights) instead of the 3x3.
        public var strideInFirstConv = false
        /// Freeze the stem (1) or the stem and res2/layer1 (2, Detectron2's default); 0 trains everything.
        public var freezeAt = 2
        /// Optional narrower widths for CPU-sized experiments (empty = the standard 64/128/256/512).
        public var widths: [Int] = []
        public var stemWidth = 64
    }

    public struct Anchors: Codable, Equatable, Sendable {
        public var sizes: [Float] = [128, 256, 512]
        /// Height / width.
        public var aspectRatios: [Float] = [0.5, 1, 2]
        public var stride = 16
        /// `torchvision` (ratio-major, rounded base anchors) or `detectron2` (size-major, not rounded).
        public var convention = AnchorConvention.torchvision
    }

    public struct RPN: Codable, Equatable, Sendable {
        public var preNmsTopKTrain = 12000
        public var postNmsTopKTrain = 2000
        public var preNmsTopKTest = 6000
        public var postNmsTopKTest = 300
        public var nmsThreshold: Float = 0.7
        /// Proposals smaller than this (in input pixels) are dropped.
        public var minSize: Float = 1e-3
        public var fgIou: Float = 0.7
        public var bgIou: Float = 0.3
        public var batchSizePerImage = 256
        public var positiveFraction: Float = 0.5
        /// Smooth L1 beta of the RPN box loss (0 = L1).
        public var smoothL1Beta: Float = 1.0 / 9
    }

    public struct RoI: Codable, Equatable, Sendable {
        /// `roipool` (Fast R-CNN max pooling, as in the paper) or `roialign` (aligned, adaptive sampling).
        public var pooler = RoIPoolerKind.roipool
        public var resolution = 14
        public var batchSizePerImage = 128
        public var positiveFraction: Float = 0.25
        public var fgIou: Float = 0.5
        /// Background RoIs have IoU in [bgIouLow, bgIouHigh).
        public var bgIouLow: Float = 0.0
        public var bgIouHigh: Float = 0.5
        public var boxWeights: [Float] = [10, 10, 5, 5]
        public var smoothL1Beta: Float = 1.0
    }

    public struct Test: Codable, Equatable, Sendable {
        public var scoreThreshold: Float = 0.05
        public var nmsThreshold: Float = 0.5
        public var detectionsPerImage = 100
    }

    public struct Input: Codable, Equatable, Sendable {
        /// Shorter side after resizing (0 = keep the image's size), capped so the longer side <= maxSize.
        public var minSize = 600
        public var maxSize = 1000
        /// `rgb` with mean/std on 0...1 values (torchvision), or `bgr` with mean on 0...255 values and
        /// std 1 (MSRA/Caffe/Detectron2 weights).
        public var pixelFormat = PixelFormat.rgb
        public var mean: [Float] = [0.485, 0.456, 0.406]
        public var std: [Float] = [0.229, 0.224, 0.225]
    }

    public init() {}

    public var numClasses: Int { classNames.count }

    /// Checks values that decoding cannot; the message names the key.
    public func validate() throws {
        func fail(_ m: String) -> DetectorError { DetectorError(m) }
        guard [18, 34, 50, 101, 152].contains(backbone.depth) else {
            throw fail("backbone.depth must be 18, 34, 50, 101 or 152, got \(backbone.depth)")
        }
        guard (0...5).contains(backbone.freezeAt) else { throw fail("backbone.freeze_at must be in 0...5") }
        guard backbone.widths.isEmpty || backbone.widths.count == 4 else {
            throw fail("backbone.widths must be empty or have 4 values")
        }
        guard !anchors.sizes.isEmpty && !anchors.aspectRatios.isEmpty else {
            throw fail("anchors.sizes and anchors.aspect_ratios must not be empty")
        }
        guard anchors.stride == 16 else { throw fail("anchors.stride must be 16 (the C4 trunk's stride)") }
        guard
            categoryIds.isEmpty || classNames.isEmpty
                || (categoryIds.count == classNames.count && Set(categoryIds).count == categoryIds.count
                    && categoryIds.allSatisfy { $0 > 0 })
        else {
            throw fail(
                "category_ids must list one distinct positive id per class (\(classNames.count) classes, "
                + "\(categoryIds.count) ids)"
            )
        }
        guard roi.boxWeights.count == 4 else { throw fail("roi.box_weights needs 4 values") }
        guard input.mean.count == 3 && input.std.count == 3 && input.std.allSatisfy({ $0 > 0 }) else {
            throw fail("input.mean and input.std need 3 values (std > 0)")
        }
        guard input.minSize >= 0 && input.maxSize >= 0 else { throw fail("input sizes must not be negative") }
        guard !classNames.isEmpty else { throw fail("class_names must list at least one class") }
        try validateRanges()
    }

    /// The largest network input side `input.min_size` / `input.max_size` may ask for: bigger inputs need
    /// more memory than any machine this runs on has (a 100000-pixel side is a 137 GB trunk activation).
    public static let maxInputSide = 8192
    /// Upper bounds for counts (proposals, sampled anchors/RoIs, detections per image).
    public static let maxCount = 1_000_000

    /// Every number a user can set (in a recipe, a YAML override, a checkpoint's metadata or through a
    /// command-line option) is finite and inside the range it makes sense in; the message names the key.
    public func validateRanges() throws {
        func fail(_ m: String) -> DetectorError { DetectorError(m) }
        func unit(_ v: Float, _ key: String) throws {
            guard v.isFinite, v >= 0, v <= 1 else { throw fail("\(key) must be a number from 0 to 1, got \(v)") }
        }
        func count(_ v: Int, _ key: String, _ range: ClosedRange<Int> = 1...DetectorConfig.maxCount) throws {
            guard range.contains(v) else {
                throw fail("\(key) must be from \(range.lowerBound) to \(range.upperBound), got \(v)")
            }
        }
        func positive(_ v: Float, _ key: String, max: Float = 1e6) throws {
            guard v.isFinite, v > 0, v <= max else {
                throw fail("\(key) must be a positive number up to \(max), got \(v)")
            }
        }
        try count(input.minSize, "input.min_size", 0...Self.maxInputSide)
        try count(input.maxSize, "input.max_size", 0...Self.maxInputSide)
        guard input.mean.allSatisfy(\.isFinite), input.std.allSatisfy({ $0.isFinite }) else {
            throw fail("input.mean and input.std must be finite numbers")
        }
        for w in backbone.widths { try count(w, "backbone.widths", 1...8192) }
        try count(backbone.stemWidth, "backbone.stem_width", 1...8192)
        for v in anchors.sizes { try positive(v, "anchors.sizes", max: Float(Self.maxInputSide)) }
        for v in anchors.aspectRatios { try positive(v, "anchors.aspect_ratios", max: 1000) }
        try count(rpn.preNmsTopKTrain, "rpn.pre_nms_top_k_train");
        try count(rpn.postNmsTopKTrain, "rpn.post_nms_top_k_train")
        try count(rpn.preNmsTopKTest, "rpn.pre_nms_top_k_test");
        try count(rpn.postNmsTopKTest, "rpn.post_nms_top_k_test")
        try unit(rpn.nmsThreshold, "rpn.nms_threshold"); try unit(rpn.fgIou, "rpn.fg_iou");
        try unit(rpn.bgIou, "rpn.bg_iou")
        guard rpn.minSize.isFinite, rpn.minSize >= 0 else {
            throw fail("rpn.min_size must be a finite size >= 0, got \(rpn.minSize)")
        }
        try count(rpn.batchSizePerImage, "rpn.batch_size_per_image");
        try unit(rpn.positiveFraction, "rpn.positive_fraction")
        guard rpn.smoothL1Beta.isFinite, rpn.smoothL1Beta >= 0 else {
            throw fail("rpn.smooth_l1_beta must be >= 0, got \(rpn.smoothL1Beta)")
        }
        try count(roi.resolution, "roi.resolution", 1...64);
        try count(roi.batchSizePerImage, "roi.batch_size_per_image")
        try unit(roi.positiveFraction, "roi.positive_fraction"); try unit(roi.fgIou, "roi.fg_iou")
        try unit(roi.bgIouLow, "roi.bg_iou_low"); try unit(roi.bgIouHigh, "roi.bg_iou_high")
        for v in roi.boxWeights { try positive(v, "roi.box_weights") }
        guard roi.smoothL1Beta.isFinite, roi.smoothL1Beta >= 0 else {
            throw fail("roi.smooth_l1_beta must be >= 0, got \(roi.smoothL1Beta)")
        }
        try unit(test.scoreThreshold, "test.score_threshold"); try unit(test.nmsThreshold, "test.nms_threshold")
        try count(test.detectionsPerImage, "test.detections_per_image", 1...100_000)
    }
}

/// An error of the detector (configuration, checkpoint, input); the message names what is wrong.
public struct DetectorError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The channel order the network expects: torchvision models take RGB, Detectron2/Caffe2 models BGR.
public enum PixelFormat: String, ChoiceField { case rgb, bgr }

import Foundation
import Support
import Detection
import Engine

/// A fine-tuning recipe (`configs/detector_*.yaml`): the detector, the data and the solver.
public struct FinetuneConfig: Codable, Equatable, Sendable {
    public var detector = DetectorConfig()
    public var data = DataConfig()
    public var solver = SolverConfig()
    /// Engine threads; 0 = number of cores.
    public var threads = 0

    public struct DataConfig: Codable, Equatable, Sendable {
        /// `voc` (a VOCdevkit/VOC20xx folder) or `coco` (instances JSON + image folder).
        public var format = DetectionDataFormat.voc
        /// VOC: the devkit folder. COCO: the instances JSON.
        public var path = "data/VOCdevkit/VOC2007"
        /// COCO: the image folder.
        public var images = ""
        public var split = "trainval"
        /// More VOC training sets as "DEVKIT:SPLIT" (e.g. ["data/VOCdevkit/VOC2012:trainval"] for VOC07+12).
        public var extraTrain: [String] = []
        /// Validation: VOC split of the same folder, or a COCO JSON (+ `val_images`); empty = none.
        public var valSplit = "test"
        public var valPath = ""
        public var valImages = ""
        /// Validate on at most this many images (0 = all).
        public var valLimit = 0
        /// Class names (empty = from the annotations: VOC's standard 20 when they fit, else sorted names).
        public var classes: [String] = []
        /// `reject` (stop with the file and object) or `drop` (warn and count) boxes of zero/negative size.
        public var invalidBoxes = DetectionDataset.InvalidBoxPolicy.reject
    }

    public struct SolverConfig: Codable, Equatable, Sendable {
        public var iterations = 20000
        /// Images per iteration (one SGD step).
        public var imsPerBatch = 1
        /// Images per forward pass (padded to one batch tensor); the gradients of an iteration's passes are
        /// accumulated. 0 = all `ims_per_batch` images in one pass; 1 = one image at a time (least memory).
        public var imagesPerForward = 0
        /// Batch images of the same orientation (width >= height, or not) together so that padding stays
        /// small, as Detectron2's AspectRatioGroupedDataset does; only matters when ims_per_batch > 1.
        public var aspectRatioGrouping = true
        public var lr: Float = 0.001
        public var momentum: Float = 0.9
        public var weightDecay: Float = 1e-4
        public var warmupIterations = 500
        public var warmupFactor: Float = 0.001
        public var milestones: [Int] = [15000]
        public var gamma: Float = 0.1
        /// Shorter-side sizes drawn per image (multi-scale training); empty = detector.input.min_size.
        public var scales: [Int] = [600]
        public var flip = true
        public var seed: UInt64 = 0
        public var checkpointEvery = 1000
        /// Validation mAP every N iterations (0 = only at the end).
        public var validateEvery = 0
    }

    public init() {}

    public func validate() throws {
        func fail(_ m: String) -> DetectorError { DetectorError(m) }
        guard solver.iterations > 0 && solver.imsPerBatch > 0 else {
            throw fail("solver.iterations and solver.ims_per_batch must be positive")
        }
        guard solver.imagesPerForward >= 0 else {
            throw fail("solver.images_per_forward must be 0 (all of ims_per_batch) or positive")
        }
        guard solver.lr > 0 && solver.lr.isFinite else { throw fail("solver.lr must be positive") }
        guard solver.scales.allSatisfy({ $0 > 0 }) else { throw fail("solver.scales must be positive sizes") }
        // Ranges of every other number (a typo such as 1e9 or NaN must not reach an allocation or a trap).
        func range<T: Comparable>(_ v: T, _ r: ClosedRange<T>, _ key: String) throws {
            guard r.contains(v) else { throw fail("\(key) must be from \(r.lowerBound) to \(r.upperBound), got \(v)") }
        }
        try range(threads, 0...Threading.maxThreads, "threads")
        try range(solver.iterations, 1...100_000_000, "solver.iterations")
        try range(solver.imsPerBatch, 1...4096, "solver.ims_per_batch")
        try range(solver.imagesPerForward, 0...4096, "solver.images_per_forward")
        for (v, key) in [
            (solver.lr, "solver.lr"), (solver.momentum, "solver.momentum"), (solver.weightDecay, "solver.weight_decay"),
            (solver.warmupFactor, "solver.warmup_factor"), (solver.gamma, "solver.gamma")
        ] {
            guard v.isFinite, v >= 0, v <= 1e3 else {
                throw fail("\(key) must be a finite number from 0 to 1000, got \(v)")
            }
        }
        try range(solver.warmupIterations, 0...100_000_000, "solver.warmup_iterations")
        for m in solver.milestones { try range(m, 0...100_000_000, "solver.milestones") }
        for v in solver.scales { try range(v, 1...DetectorConfig.maxInputSide, "solver.scales") }
        try range(solver.checkpointEvery, 0...100_000_000, "solver.checkpoint_every")
        try range(solver.validateEvery, 0...100_000_000, "solver.validate_every")
        try range(data.valLimit, 0...100_000_000, "data.val_limit")
        try detector.validateRanges()
    }
}

/// How detection data is laid out: a Pascal VOC devkit folder or a COCO instances JSON.
public enum DetectionDataFormat: String, ChoiceField { case voc, coco }

import Foundation
import Data
import Support
import Engine

/// A classification training recipe (`configs/cifar10_resnet20.yaml`, `configs/imagenet_resnet101.yaml`, ...).
/// Every key has a default; a recipe sets only what differs. Unknown keys are errors.
public struct TrainConfig: Codable, Equatable, Sendable {
    /// Architecture name (`cifar_resnet20`, `resnet101`, `plain34`, `resnet34_c`, ...).
    public var arch = "cifar_resnet20"
    /// Number of classes; 0 = take it from the data set.
    public var numClasses = 0
    /// Thinner (or wider) networks: per-stage base widths (empty = the architecture's) and stem width
    /// (0 = the architecture's). A detector backbone made this way needs the same values.
    public var widths: [Int] = []
    public var stemWidth = 0
    public var data = DataConfig()
    public var train = OptimConfig()
    /// Engine threads; 0 = number of cores.
    public var threads = 0

    public struct DataConfig: Codable, Equatable, Sendable {
        /// `cifar10` (binary batches), `folder` (one sub-folder per class) or `shapes` (the generated
        /// 10-class shape set, `generated_count` training images; for demos and tests).
        public var format = ClassificationDataFormat.cifar10
        /// Number of generated training images for `format: shapes`.
        public var generatedCount = 4000
        /// CIFAR: a cifar-10-batches-bin folder, or one .bin file. Folder: the training image folder.
        public var path = "data/cifar-10-batches-bin"
        /// Validation data: a folder (folder format) or a .bin file; empty = CIFAR's test_batch.bin when
        /// `path` is the standard folder, none otherwise.
        public var valPath = ""
        /// CIFAR: hold out the last 5,000 training records as the validation set (45k/5k split).
        public var valSplit = false
        public var mean: [Float] = [0.4914, 0.4822, 0.4465]
        public var std: [Float] = [0.2470, 0.2435, 0.2616]
        /// ImageNet-style scale augmentation: shorter side drawn from [min, max].
        public var scaleRange: [Int] = [256, 480]
        public var crop = 224
        /// Test-time resize of the shorter side before the centre crop.
        public var testResize = 256
        /// `skip` (warn and count) or `stop` on images that fail to decode.
        public var badImages = BadImagePolicy.skip
    }

    public struct OptimConfig: Codable, Equatable, Sendable {
        public var batchSize = 128
        public var iterations = 64000
        public var lr: Float = 0.1
        public var momentum: Float = 0.9
        public var weightDecay: Float = 1e-4
        public var nesterov = false
        /// Multistep decay at these iterations by `gamma`.
        public var milestones: [Int] = [32000, 48000]
        public var gamma: Float = 0.1
        public var warmupIterations = 0
        public var warmupFactor: Float = 0.001
        /// ResNet-110 warm-up: use this lr until the training error falls below `lowLrUntilTrainError`
        /// (0 = off), then the normal schedule.
        public var lowLr: Float = 0
        public var lowLrUntilTrainError: Float = 0.8
        /// Reduce-on-plateau of the validation error: patience in validations (0 = off).
        public var plateauPatience = 0
        public var plateauFactor: Float = 0.1
        public var augment = true
        public var shuffle = true
        public var seed: UInt64 = 0
        /// Save a checkpoint every N iterations (0 = only at the end).
        public var checkpointEvery = 2000
        /// Validate every N iterations (0 = only at the end).
        public var validateEvery = 2000
        /// Training error reported (and used by the low-lr phase) is the mean over this many iterations.
        public var errorWindow = 100
        /// Over several processes (mpirun): batch-norm statistics of the global batch (one all-reduce per
        /// layer each way), which makes an N-process run equal to a one-process run; false = each process
        /// normalises its own B/N images, as torch DDP does by default.
        public var syncBn = false
    }

    public init() {}

    /// Checks values that decoding cannot.
    public func validate() throws {
        func fail(_ m: String) -> Error { RecipeValueError(message: m) }
        guard data.mean.count == 3 && data.std.count == 3 && data.std.allSatisfy({ $0 > 0 }) else {
            throw fail("data.mean and data.std need 3 values (std > 0)")
        }
        guard data.scaleRange.count == 2 && data.scaleRange[0] <= data.scaleRange[1] && data.scaleRange[0] > 0 else {
            throw fail("data.scale_range must be [min, max] with 0 < min <= max")
        }
        guard train.batchSize > 0 else { throw fail("train.batch_size must be positive") }
        guard train.iterations > 0 else { throw fail("train.iterations must be positive") }
        guard train.lr > 0 && train.lr.isFinite else { throw fail("train.lr must be positive") }
        guard numClasses >= 0 else { throw fail("num_classes must not be negative") }
        // Ranges of every other number (a typo such as 1e9 or NaN must not reach an allocation or a trap).
        func range<T: Comparable>(_ v: T, _ r: ClosedRange<T>, _ key: String) throws {
            guard r.contains(v) else { throw fail("\(key) must be from \(r.lowerBound) to \(r.upperBound), got \(v)") }
        }
        try range(threads, 0...Threading.maxThreads, "threads")
        try range(numClasses, 0...1_000_000, "num_classes")
        for w in widths { try range(w, 1...8192, "widths") }
        try range(stemWidth, 0...8192, "stem_width")
        try range(data.generatedCount, 1...10_000_000, "data.generated_count")
        try range(data.crop, 1...4096, "data.crop")
        try range(data.testResize, 0...8192, "data.test_resize")
        for v in data.scaleRange { try range(v, 1...8192, "data.scale_range") }
        guard (data.mean + data.std).allSatisfy(\.isFinite) else {
            throw fail("data.mean and data.std must be finite numbers")
        }
        try range(train.batchSize, 1...65_536, "train.batch_size")
        try range(train.iterations, 1...100_000_000, "train.iterations")
        for (v, key) in [
            (train.lr, "train.lr"), (train.momentum, "train.momentum"), (train.weightDecay, "train.weight_decay"),
            (train.gamma, "train.gamma"), (train.warmupFactor, "train.warmup_factor"), (train.lowLr, "train.low_lr"),
            (train.lowLrUntilTrainError, "train.low_lr_until_train_error"),
            (train.plateauFactor, "train.plateau_factor")
        ] {
            guard v.isFinite, v >= 0, v <= 1e3 else {
                throw fail("\(key) must be a finite number from 0 to 1000, got \(v)")
            }
        }
        for m in train.milestones { try range(m, 0...100_000_000, "train.milestones") }
        try range(train.warmupIterations, 0...100_000_000, "train.warmup_iterations")
        try range(train.plateauPatience, 0...100_000_000, "train.plateau_patience")
        try range(train.checkpointEvery, 0...100_000_000, "train.checkpoint_every")
        try range(train.validateEvery, 0...100_000_000, "train.validate_every")
        try range(train.errorWindow, 1...100_000_000, "train.error_window")
    }
}

public struct RecipeValueError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Classification data: CIFAR-10 binary batches, an image folder (one sub-folder per class), or the
/// generated shape set.
public enum ClassificationDataFormat: String, ChoiceField { case cifar10, folder, shapes }

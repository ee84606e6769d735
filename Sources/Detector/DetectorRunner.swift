import Foundation
import Engine
import NN
import Imaging
import Detection
import Support
import WeightImport

/// The detector ready for inference: checkpoint loaded, batch norm folded, no tape. `detect` reads an image's
/// pixels into the network input (`Preprocess`) and runs `FasterRCNN.detect`.
public struct DetectorRunner {
    public let model: FasterRCNN

    public init(model: FasterRCNN) {
        self.model = model
        model.eval()
    }

    /// Loads a detector from any supported file: a safetensors checkpoint (its metadata holds the config and
    /// the class names), or a Detectron2 C4 `.pkl` / `.pth` converted in memory (its config comes from the
    /// conversion). The one loader of `detect`, `evaluate` and the tests.
    public init(checkpoint url: URL) throws {
        let file = try CheckpointImport.open(url, arch: nil)
        let cfg = try FasterRCNN.config(from: file.metadata, file: url.path)
        let model = try FasterRCNN(cfg)
        do { try model.load(file) } catch let e as CheckpointError {
            throw CheckpointError(
                file: e.file,
                e.message + " (expected a Faster R-CNN R\(cfg.backbone.depth)-C4 with \(cfg.numClasses) classes)")
        }
        self.init(model: model)
    }

    /// The model's config. Setting it applies the test-time settings (input.*, rpn.*_test, roi.pooler, test.*)
    /// to the model; a change of the trained structure is refused by `applyOverrides` and `validate`.
    public var config: DetectorConfig {
        get { model.config }
        nonmutating set { try? model.apply(testSettings: newValue) }
    }

    /// Applies a YAML file of overrides (any config key, e.g. test.score_threshold or input.min_size).
    public func applyOverrides(yaml: URL) throws {
        let updated = try Recipe.load(config, file: yaml)
        guard updated.classNames == config.classNames, updated.backbone == config.backbone,
            updated.anchors == config.anchors
        else {
            throw DetectorError(
                "\(yaml.path): only test-time settings (test.*, input.*, rpn.*_test, roi.pooler) can be overridden for "
                + "a trained detector"
            )
        }
        do { try model.apply(testSettings: updated) } catch { throw DetectorError("\(yaml.path): \(error)") }
    }

    /// Runs the whole detector on one image; boxes are in the image's own pixel coordinates. `input` replaces
    /// the config's input settings for this call (test-time augmentation).
    public func detect(_ image: RGBImage, input: DetectorConfig.Input? = nil) throws -> [DetectedObject] {
        let prepared = try Preprocess.prepare(image, input: input ?? config.input)
        return GradMode.withoutGrad { model.detect(prepared).objects }
    }

    /// The stages on a prepared input, with their intermediate results.
    public func run(_ p: PreparedImage) -> FasterRCNN.Trace { model.detect(p) }
}

import Foundation
import NN
import Detector

extension DetectorRunner {
    /// Loads a detector from any supported file: a safetensors checkpoint, or a Detectron2 C4 `.pkl` /
    /// `.pth` converted in memory (its config comes from the conversion).
    public init(importing url: URL) throws {
        let file = try CheckpointImport.open(url, arch: nil)
        let cfg = try FasterRCNN.config(from: file.metadata, file: url.path)
        let model = try FasterRCNN(cfg)
        do { try model.load(file) }
        catch let e as CheckpointError { throw CheckpointError(file: e.file, e.message + " (expected a Faster R-CNN R\(cfg.backbone.depth)-C4 with \(cfg.numClasses) classes)") }
        self.init(model: model)
    }
}

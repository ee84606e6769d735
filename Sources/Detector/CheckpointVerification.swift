import Foundation
import NN
import ResNet
import WeightImport

extension ImportedCheckpoint {
    /// Loads the converted weights into the model their metadata describes, strictly (every name and
    /// shape must match; a backbone without `fc` may lack only `fc.*`). Returns a one-line description.
    public func verify() throws -> String {
        let file = try safeTensorsFile()
        switch kind {
        case .classifier(let cfg):
            let net = ResNet(cfg)
            let hasFC = tensors.contains { $0.name == "fc.weight" }
            let report = try net.load(file, strict: hasFC)
            if !hasFC {
                let other = report.missing.filter { !$0.hasPrefix("fc.") }
                guard other.isEmpty, report.unexpected.isEmpty else {
                    throw CheckpointError(file: source, "does not match \(cfg.name): \(report.summary)")
                }
                return "loads into \(cfg.name) (all backbone tensors; no fc)"
            }
            return "loads into \(cfg.name) (strict: every name and shape)"
        case .detector(let cfg):
            let model = try FasterRCNN(cfg)
            try model.load(file)
            return
                "loads into Faster R-CNN R\(cfg.backbone.depth)-C4 with \(cfg.numClasses) classes (strict: every name "
                + "and shape)"
        case .unknown:
            return "not checked against a model (names not recognised)"
        }
    }
}

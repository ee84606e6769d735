import Foundation
import Engine

/// What an exact resume needs besides the weights: the optimizer's momentum buffers, stored next to the
/// weights as `optimizer.momentum.<parameter name>` (parameters that have not been updated yet have none).
/// Shared by classification training and detector fine-tuning.
public enum TrainingCheckpoint {
    /// The names of the trainable parameters, in the optimizer's order.
    public static func trainableNames(_ model: Module) -> [String] {
        model.namedParameters().filter { $0.1.requiresGrad }.map { $0.0 }
    }

    /// Writes the model's state, `metadata` and the momentum buffers to `url` (atomically).
    public static func write(_ model: Module, optimizer: SGD, metadata: [String: String], to url: URL) throws {
        var w = model.stateWriter(metadata: metadata)
        for (name, buf) in zip(trainableNames(model), optimizer.momentumBuffers) {
            if let buf { w.add("optimizer.momentum." + name, buf) }
        }
        try w.write(to: url)
    }

    /// Loads weights and momentum from a checkpoint written by `write`; returns the file (for its metadata) and
    /// the iteration stored in it. `kind` names the checkpoint in the error for files without one (`hint` follows).
    public static func restore(
        _ model: Module, optimizer: SGD, from url: URL, kind: String,
        hint: String = ""
    ) throws -> (SafeTensorsFile, Int) {
        let file = try SafeTensorsFile(contentsOf: url)
        guard let iteration = file.metadata["iteration"].flatMap(Int.init) else {
            throw CheckpointError(file: url.path, "is not a \(kind) checkpoint (no iteration in its metadata)\(hint)")
        }
        try model.load(file, strict: true) { $0.hasPrefix("optimizer.") }
        optimizer.setMomentumBuffers(
            try trainableNames(model).map { n in
                file.entries["optimizer.momentum." + n] != nil ? try file.tensor("optimizer.momentum." + n) : nil
            })
        return (file, iteration)
    }
}

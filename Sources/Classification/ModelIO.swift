import Foundation
import Engine
import NN
import ResNet
import WeightImport

/// Loading classification networks from checkpoints: ours (metadata names the architecture) or
/// torchvision-named safetensors (the architecture comes from `--arch`, the class count from fc.weight).
public enum ModelIO {
    /// The architecture a checkpoint describes, or `arch` when given (then it must agree with the file).
    public static func config(for file: SafeTensorsFile, arch: String?) throws -> ResNetConfig {
        var cfg: ResNetConfig
        if let s = file.metadata["resnet_config"], let d = s.data(using: .utf8),
            let stored = try? JSONDecoder().decode(ResNetConfig.self, from: d)
        {
            cfg = stored
            if let arch {
                let want = try ResNetConfig.named(arch)
                if want.name != stored.name || want.shortcut != stored.shortcut {
                    throw CheckpointError(
                        file: file.path,
                        "is a \(stored.name) (shortcut \(stored.shortcut.rawValue)) checkpoint, but --arch \(arch) was "
                        + "given"
                    )
                }
            }
        } else if let arch {
            cfg = try ResNetConfig.named(arch)
        } else if let a = file.metadata["arch"] {
            cfg = try ResNetConfig.named(a)
        } else {
            throw CheckpointError(file: file.path, "does not name its architecture; pass --arch (e.g. --arch resnet50)")
        }
        if let fc = file.entries["fc.weight"], fc.shape.count == 2 { cfg.numClasses = fc.shape[0] }
        return cfg
    }

    /// A network with the checkpoint's weights (strict: every name must match). Reads safetensors, and
    /// torchvision `.pth` / Detectron2 `.pkl` files through WeightImport (no Python involved).
    public static func load(_ url: URL, arch: String?) throws -> (ResNet, SafeTensorsFile) {
        let file = try CheckpointImport.open(url, arch: arch)
        let cfg = try config(for: file, arch: arch)
        let net = ResNet(cfg)
        do { try net.load(file) } catch let e as CheckpointError {
            throw CheckpointError(
                file: e.file, e.message + " (expected a \(cfg.name) checkpoint with torchvision parameter names)")
        }
        return (net, file)
    }

    /// Class names stored in a checkpoint's metadata (JSON list under "classes").
    public static func classNames(_ file: SafeTensorsFile) -> [String]? {
        guard let s = file.metadata["classes"], let d = s.data(using: .utf8) else { return nil }
        return try? JSONDecoder().decode([String].self, from: d)
    }
}

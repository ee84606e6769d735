import Foundation
import Engine
import NN

extension FasterRCNN {
    /// Initialises the trunk and the res5 head from a classification checkpoint (ours or torchvision-named
    /// safetensors): `conv1/bn1/layer1..3` -> `backbone.*`, `layer4` -> `roi_heads.res5.*`; `fc.*` is
    /// ignored. Every backbone name must be present with the right shape (otherwise nothing changes and the
    /// error lists what differs, e.g. a checkpoint of another depth).
    public func loadBackbone(_ file: SafeTensorsFile) throws {
        func source(_ name: String) -> String? {
            if name.hasPrefix("backbone.") { return String(name.dropFirst("backbone.".count)) }
            if name.hasPrefix("roi_heads.res5.") { return "layer4." + name.dropFirst("roi_heads.res5.".count) }
            return nil
        }
        var w = SafeTensorsWriter()
        var missing: [String] = [], mismatched: [String] = []
        let targets = (namedParameters() + namedBuffers()).compactMap { n, t in source(n).map { (n, $0, t) } }
        for (n, src, t) in targets {
            guard let e = file.entries[src] else { missing.append(src); continue }
            guard e.shape == t.shape else {
                mismatched.append("\(src): detector \(t.shape) vs file \(e.shape)"); continue
            }
            w.add(n, try file.tensor(src))
        }
        guard missing.isEmpty && mismatched.isEmpty else {
            var parts: [String] = []
            if !missing.isEmpty {
                parts.append(
                    "\(missing.count) missing: "
                    + "\(missing.prefix(10).joined(separator: ", "))\(missing.count > 10 ? ", ..." : "")"
                )
            }
            if !mismatched.isEmpty {
                parts.append("\(mismatched.count) mis-shaped: \(mismatched.prefix(10).joined(separator: ", "))")
            }
            throw CheckpointError(
                file: file.path,
                "is not a ResNet-\(config.backbone.depth) classification checkpoint for this detector: "
                + "\(parts.joined(separator: "; "))"
            )
        }
        for (n, src) in namedIntBuffers().compactMap({ n, _ in source(n).map { (n, $0) } }) {
            if let e = file.entries[src], e.count == 1, let v = try? file.integers(src).first { w.add(n, int64: v) }
        }
        let mapped = try SafeTensorsFile(data: try w.serialized(), name: file.path)
        try load(mapped, strict: false)
        applyFreezing()
    }
}

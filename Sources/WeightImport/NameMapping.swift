import Foundation
import NN
import ResNet

/// How a state dict names its tensors.
public enum WeightLayout: String, Sendable {
    case torchvisionResNet = "torchvision ResNet"
    case detectron2Backbone = "Detectron2 ResNet backbone"
    case caffe2Backbone = "Caffe2 (MSRA) ResNet backbone"
    case detectron2FasterRCNN = "Detectron2 Faster R-CNN C4"
    case nativeDetector = "this project's Faster R-CNN C4"
    case unrecognised = "unrecognised"

    public var isDetectron2: Bool { [.detectron2Backbone, .caffe2Backbone, .detectron2FasterRCNN].contains(self) }

    /// Recognises the layout from the names alone.
    public static func detect(_ names: [String]) -> WeightLayout {
        let set = Set(names)
        func any(_ p: String) -> Bool { names.contains { $0.hasPrefix(p) } }
        if set.contains("backbone.stem.conv1.weight") || any("backbone.res2.") || any("roi_heads.box_predictor.") {
            return .detectron2FasterRCNN
        }
        if set.contains("stem.conv1.weight") || any("res2.") { return .detectron2Backbone }
        if set.contains("conv1_w") || any("res2_") { return .caffe2Backbone }
        if set.contains("conv1.weight") && any("layer1.") { return .torchvisionResNet }
        if set.contains("backbone.conv1.weight") && any("rpn.") && any("roi_heads.res5.") { return .nativeDetector }
        return .unrecognised
    }
}

/// Name conversions to the torchvision names this project uses (`conv1`, `bn1`, `layer1..4`, `bnN`,
/// `downsample.{0,1}`, `fc`). Each returns nil for a name it does not know.
public enum NameMapping {
    static let normFields: Set<String> = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]

    /// Detectron2 ResNet names (no prefix): `stem.conv1.weight` -> `conv1.weight`, `stem.conv1.norm.*` ->
    /// `bn1.*`, `res{2..5}.{i}.conv{j}.weight` -> `layer{1..4}.{i}.conv{j}.weight`, `.conv{j}.norm.*` ->
    /// `.bn{j}.*`, `.shortcut.weight` -> `.downsample.0.weight`, `.shortcut.norm.*` -> `.downsample.1.*`,
    /// `fc.*` / `linear.*` / `stem.fc.*` -> `fc.*`.
    public static func detectron2ToTorchvision(_ name: String) -> String? {
        let p = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard p.count >= 2 else { return nil }
        if p[0] == "stem" && p.count >= 3 && p[1] == "conv1" {
            if p.count == 3 && p[2] == "weight" { return "conv1.weight" }
            if p.count == 4 && p[2] == "norm" && normFields.contains(p[3]) { return "bn1." + p[3] }
            return nil
        }
        if p.count == 3 && p[0] == "stem" && p[1] == "fc" && ["weight", "bias"].contains(p[2]) { return "fc." + p[2] }
        if p.count == 2 && (p[0] == "fc" || p[0] == "linear") && ["weight", "bias"].contains(p[1]) {
            return "fc." + p[1]
        }
        guard p.count >= 4, p[0].hasPrefix("res"), let stage = Int(p[0].dropFirst(3)), (2...5).contains(stage),
            let block = Int(p[1]), block >= 0
        else { return nil }
        let base = "layer\(stage - 1).\(block)."
        switch p[2] {
        case "conv1", "conv2", "conv3":
            if p.count == 4 && p[3] == "weight" { return base + p[2] + ".weight" }
            if p.count == 5 && p[3] == "norm" && normFields.contains(p[4]) {
                return base + "bn" + p[2].dropFirst(4) + "." + p[4]
            }
        case "shortcut":
            if p.count == 4 && p[3] == "weight" { return base + "downsample.0.weight" }
            if p.count == 5 && p[3] == "norm" && normFields.contains(p[4]) { return base + "downsample.1." + p[4] }
        default: break
        }
        return nil
    }

    /// Caffe2 / MSRA names (Detectron's ImageNet models, e.g. `R-101.pkl`) to Detectron2 names, as
    /// Detectron2's `convert_basic_c2_names` does for a backbone: `conv1_w`, `res_conv1_bn_{s,b,rm,riv}`,
    /// `res{n}_{i}_branch{1,2a,2b,2c}_{w,bn_s,bn_b,bn_rm,bn_riv}`, `pred_{w,b}` / `fc1000_{w,b}`.
    public static func caffe2ToDetectron2(_ name: String) -> String? {
        let field: [String: String] = ["s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"]
        switch name {
        case "conv1_w": return "stem.conv1.weight"
        case "pred_w", "fc1000_w": return "fc.weight"
        case "pred_b", "fc1000_b": return "fc.bias"
        default: break
        }
        let p = name.split(separator: "_").map(String.init)
        if p.count == 4 && p[0] == "res" && p[1] == "conv1" && p[2] == "bn", let f = field[p[3]] {
            return "stem.conv1.norm." + f
        }
        guard p.count >= 4, p[0].hasPrefix("res"), Int(p[0].dropFirst(3)) != nil, Int(p[1]) != nil else { return nil }
        let part: String
        switch p[2] {
        case "branch1": part = "shortcut"
        case "branch2a": part = "conv1"
        case "branch2b": part = "conv2"
        case "branch2c": part = "conv3"
        default: return nil
        }
        let base = "\(p[0]).\(p[1]).\(part)"
        if p.count == 4 && p[3] == "w" { return base + ".weight" }
        if p.count == 5 && p[3] == "bn", let f = field[p[4]] { return base + ".norm." + f }
        return nil
    }

    /// The ResNet a torchvision-named state dict describes (block counts, widths, block kind, shortcut
    /// option, classes), from names and shapes alone.
    public static func inferResNet(_ shapes: [String: [Int]], strideInFirst1x1: Bool, file: String) throws
        -> ResNetConfig
    {
        func fail(_ m: String) -> CheckpointError { CheckpointError(file: file, m) }
        guard let c1 = shapes["conv1.weight"], c1.count == 4 else { throw fail("has no conv1.weight: not a ResNet") }
        var layers: [Int] = [], widths: [Int] = []
        while true {
            let s = layers.count + 1
            var n = 0
            while shapes["layer\(s).\(n).conv1.weight"] != nil { n += 1 }
            if n == 0 { break }
            guard let w = shapes["layer\(s).0.conv1.weight"], w.count == 4 else {
                throw fail("layer\(s).0.conv1.weight is not a conv weight")
            }
            layers.append(n); widths.append(w[0])
        }
        guard !layers.isEmpty else { throw fail("has no layer1.0.conv1.weight: not a ResNet") }
        let bottleneck = shapes["layer1.0.conv3.weight"] != nil
        let cifar = c1[2] == 3
        var projections = 0, changes = 0, total = 0
        var inC = c1[0]
        for (s, (n, w)) in zip(layers, widths).enumerated() {
            let outC = w * (bottleneck ? 4 : 1)
            for i in 0..<n {
                total += 1
                let stride = (s > 0 && i == 0) ? 2 : 1
                if stride != 1 || inC != outC { changes += 1 }
                if shapes["layer\(s + 1).\(i).downsample.0.weight"] != nil { projections += 1 }
                inC = outC
            }
        }
        let shortcut: ShortcutOption = projections == 0 ? (changes == 0 ? .B : .A) : (projections == total ? .C : .B)
        let classes = shapes["fc.weight"].flatMap { $0.count == 2 ? $0[0] : nil } ?? 1000
        return ResNetConfig(
            family: cifar ? "cifar" : "imagenet", block: bottleneck ? .bottleneck : .basic, layers: layers,
            widths: widths,
            stemWidth: c1[0], shortcut: shortcut, strideInFirst1x1: bottleneck && strideInFirst1x1, numClasses: classes)
    }

    /// Adds running statistics (mean 0, variance 1, as Detectron2's FrozenBatchNorm2d loads files without
    /// them) for every batch norm that has a weight but no statistics. Returns how many were added.
    static func addMissingStatistics(_ tensors: inout [(name: String, tensor: RawTensor)]) -> Int {
        let names = Set(tensors.map(\.name))
        var added = 0
        var out: [(name: String, tensor: RawTensor)] = []
        for (n, t) in tensors {
            out.append((n, t))
            guard n.hasSuffix(".weight"), t.shape.count == 1 else { continue }
            let base = String(n.dropLast(".weight".count))
            let last = base.split(separator: ".").last.map(String.init) ?? ""
            guard last.hasPrefix("bn") || base.hasSuffix("downsample.1") else { continue }
            for (field, v) in [("running_mean", 0.0), ("running_var", 1.0)] where !names.contains(base + "." + field) {
                out.append((base + "." + field, RawTensor.filled(v, shape: t.shape, dtype: t.isFloat ? t.dtype : .f32)))
                if field == "running_mean" { added += 1 }
            }
        }
        tensors = out
        return added
    }
}

import Foundation
import Engine
import NN
import ResNet
import Data
import Imaging

/// Inference with a trained classifier: single images (as is, centre crop or 10-crop), data-set
/// evaluation (top-1/top-5 error) and the paper's layer-response analysis.
public struct Classifier {
    public enum Crop: String, CaseIterable, Sendable { case center, ten, none }

    public let model: ResNet
    public let classNames: [String]
    public var normalization: Normalization
    /// Shorter side before cropping (0 = keep the image's size).
    public var resize = 256
    public var crop: Crop = .center
    public var cropSize = 224
    /// Feed channels in BGR order (MSRA/Caffe/Detectron2 weights); `normalization` then applies per input
    /// channel in that order.
    public var bgr = false
    /// Multi-scale testing (the paper's {224, 256, 384, 480, 640}): the image is resized to each shorter side
    /// in turn, run with the current crop setting (`none`: the whole image, fully convolutionally), and the
    /// softmax outputs of the scales are averaged with equal weight. Empty: one scale, `resize`.
    public var scales: [Int] = []

    public init(model: ResNet, classNames: [String]? = nil, normalization: Normalization? = nil) {
        self.model = model
        model.eval()
        let k = model.config.numClasses
        self.classNames = classNames ?? (0..<k).map { "class \($0)" }
        let cifar = model.config.family == "cifar"
        self.normalization = normalization ?? (cifar ? .cifar10 : .imagenet)
        if cifar { resize = 0; crop = .none; cropSize = 32 }
    }

    /// The input settings a checkpoint's metadata asks for: `input_format: bgr` with `pixel_mean` /
    /// `pixel_std` on 0...255 values (what WeightImport records for MSRA and Detectron2 backbones).
    public mutating func applyInputMetadata(_ metadata: [String: String]) {
        guard metadata["input_format"]?.lowercased() == "bgr" else { return }
        func floats(_ key: String) -> [Float]? {
            guard let s = metadata[key], let d = s.data(using: .utf8),
                let v = try? JSONDecoder().decode([Float].self, from: d), v.count == 3
            else { return nil }
            return v
        }
        bgr = true
        let mean = floats("pixel_mean") ?? [103.53, 116.28, 123.675], std = floats("pixel_std") ?? [1, 1, 1]
        // (v - mean) / std on 0...255 values == (v / 255 - mean / 255) / (std / 255).
        normalization = Normalization(mean: mean.map { $0 / 255 }, std: std.map { $0 / 255 })
    }

    /// The network input(s) for one image: 1 tensor row, or 10 for 10-crop.
    public func inputs(_ original: RGBImage) throws -> Tensor {
        var image = original
        if bgr {
            image.pixels.withUnsafeMutableBufferPointer { p in
                for i in stride(from: 0, to: p.count, by: 3) { p.swapAt(i, i + 2) }
            }
        }
        switch crop {
        case .none:
            let img = resize > 0 ? try ImageTransforms.resizeShorter(image, to: resize) : image
            let t = Tensor(uninitialized: [1, 3, img.height, img.width])
            img.writePlanarFloats(
                into: t.data, mean: (normalization.mean[0], normalization.mean[1], normalization.mean[2]),
                std: (normalization.std[0], normalization.std[1], normalization.std[2]))
            return t
        case .center, .ten:
            return try ImageTransforms.testCrops(
                image, resize: resize, crop: cropSize, ten: crop == .ten, normalization: normalization)
        }
    }

    /// Logits of one image (averaged over crops) and class probabilities (softmax outputs averaged over
    /// crops, as 10-crop testing does). With `scales`, both are averaged over the scales as well (each scale
    /// weighing the same, whatever its crop count).
    public func predict(_ image: RGBImage) throws -> (logits: [Float], probabilities: [Float]) {
        guard !scales.isEmpty else { return try predictOneScale(image) }
        let k = model.config.numClasses
        var l = [Float](repeating: 0, count: k), pr = [Float](repeating: 0, count: k)
        for s in scales {
            var single = self
            single.scales = []
            single.resize = s
            let (ls, ps) = try single.predictOneScale(image)
            for j in 0..<k { l[j] += ls[j] / Float(scales.count); pr[j] += ps[j] / Float(scales.count) }
        }
        return (l, pr)
    }

    func predictOneScale(_ image: RGBImage) throws -> (logits: [Float], probabilities: [Float]) {
        let x = try inputs(image)
        let logits = GradMode.withoutGrad { model(x) }
        let p = GradMode.withoutGrad { softmax(logits) }
        let n = logits.shape[0], k = logits.shape[1]
        var l = [Float](repeating: 0, count: k), pr = [Float](repeating: 0, count: k)
        for i in 0..<n {
            for j in 0..<k { l[j] += logits.data[i * k + j] / Float(n); pr[j] += p.data[i * k + j] / Float(n) }
        }
        return (l, pr)
    }

    /// Top-1/top-5 error over an image folder with the current crop setting. Images that fail to decode are
    /// counted and skipped.
    public func evaluate(_ data: ImageFolderDataset, progress: ((Int) -> Void)? = nil) throws -> (
        top1: Double, top5: Double, count: Int, skipped: [String]
    ) {
        let r = try ClassifierEnsemble([self], names: [model.config.name]).evaluate(data, progress: progress)
        return (r.rows[0].top1, r.rows[0].top5, r.count, r.skipped)
    }

    /// Standard deviations of the 3x3 layers' responses (after BN, before nonlinearity and addition) over
    /// a batch of inputs, in layer order (the paper's Fig. 7).
    public func layerResponses(_ x: Tensor) -> [(String, Double)] {
        let rec = ResponseRecorder()
        ResponseRecorder.active = rec
        defer { ResponseRecorder.active = nil }
        // Recording needs the unfolded conv -> BN path, so run with the tape on (eval mode, no update).
        _ = model(x)
        return rec.stds
    }
}

import Foundation
import Detection
import Engine
import Imaging

/// The network input for one image and how it maps back to the original pixels.
public struct PreparedImage {
    public let tensor: Tensor  // (1, 3, H, W)
    /// Input pixels per original pixel, per axis (boxes map back by these, as torchvision does).
    public let scaleX: Float, scaleY: Float
    public let originalSize: (width: Int, height: Int)
    public var inputSize: (width: Int, height: Int) { (tensor.shape[3], tensor.shape[2]) }
}

public enum Preprocess {
    /// Resize factor: min(minSize / shorter side, maxSize / longer side); 0 for a size means "no limit",
    /// both 0 keeps the image's size.
    public static func scale(width: Int, height: Int, minSize: Int, maxSize: Int) -> Float {
        let short = Float(min(width, height)), long = Float(max(width, height))
        var s: Float = minSize > 0 ? Float(minSize) / short : 1
        if maxSize > 0 && (s * long > Float(maxSize) || minSize == 0) { s = min(s, Float(maxSize) / long) }
        return s
    }

    /// Resizes (bilinear on float values, torch's `interpolate(align_corners=False)` sampling) to
    /// floor(side * scale) and normalises: RGB (v / 255 - mean) / std, or BGR v - mean with std 1.
    public static func prepare(_ image: RGBImage, input: DetectorConfig.Input) throws -> PreparedImage {
        let s = scale(width: image.width, height: image.height, minSize: input.minSize, maxSize: input.maxSize)
        // Float arithmetic, as torchvision computes the size (Double would give 191.99.. where Float gives 192).
        let fw = Double((Float(image.width) * s).rounded(.down)), fh = Double((Float(image.height) * s).rounded(.down))
        let limit = Double(DetectorConfig.maxInputSide)
        guard fw.isFinite, fh.isFinite, fw * fh <= limit * limit, max(fw, fh) <= 4 * limit else {
            throw DetectorError(
                "image of \(image.width)x\(image.height) would become \(fw)x\(fh) for the network "
                    + "(input.min_size \(input.minSize), input.max_size \(input.maxSize)): more than "
                    + "\(DetectorConfig.maxInputSide)x\(DetectorConfig.maxInputSide) pixels; set input.max_size "
                      + "(--max-size) to cap it"
            )
        }
        let w = max(1, Int(fw)), h = max(1, Int(fh))
        guard w >= 16 && h >= 16 else {
            throw DetectorError(
                "image of \(image.width)x\(image.height) becomes \(w)x\(h) after resizing, smaller than the 16-pixel "
                + "anchor stride"
            )
        }
        let bgr = input.pixelFormat == .bgr
        // Planar float copy of the original, normalised.
        let src = Tensor(uninitialized: [3, image.height, image.width])
        let n = image.width * image.height
        image.pixels.withUnsafeBufferPointer { px in
            for c in 0..<3 {
                let srcChannel = bgr ? 2 - c : c
                let plane = src.data + c * n
                let m = input.mean[c], sd = input.std[c]
                for i in 0..<n {
                    let v = Float(px[3 * i + srcChannel])
                    plane[i] = bgr ? (v - m) / sd : (v / 255 - m) / sd
                }
            }
        }
        let out = Tensor(uninitialized: [1, 3, h, w])
        if w == image.width && h == image.height {
            out.data.update(from: src.data, count: 3 * n)
        } else {
            resizeBilinearPlanar(
                src: src.data, channels: 3, srcH: image.height, srcW: image.width, dst: out.data, dstH: h, dstW: w)
        }
        return PreparedImage(
            tensor: out, scaleX: Float(w) / Float(image.width), scaleY: Float(h) / Float(image.height),
            originalSize: (image.width, image.height))
    }

    /// Images (1, 3, h, w) stacked into one batch (N, 3, maxH, maxW): each at the top-left of its slot, zeros
    /// (the normalised mean) elsewhere, as Detectron2 and torchvision pad a batch of different sizes.
    public static func batch(_ inputs: [Tensor]) -> Tensor {
        precondition(
            !inputs.isEmpty && inputs.allSatisfy { $0.shape.count == 4 && $0.shape[0] == 1 && $0.shape[1] == 3 })
        if inputs.count == 1 { return inputs[0] }
        let h = inputs.map { $0.shape[2] }.max()!, w = inputs.map { $0.shape[3] }.max()!
        let out = Tensor(zeros: [inputs.count, 3, h, w])
        for (n, x) in inputs.enumerated() {
            let xh = x.shape[2], xw = x.shape[3]
            for c in 0..<3 {
                for y in 0..<xh {
                    (out.data + ((n * 3 + c) * h + y) * w).update(from: x.data + (c * xh + y) * xw, count: xw)
                }
            }
        }
        return out
    }
}

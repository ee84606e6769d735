import Foundation
import Support
import Detection
import Engine
import Imaging
import Evaluation

/// One image prepared for training: resized (shorter side drawn from `scales`), optionally flipped,
/// boxes transformed alike and clipped to the image.
public struct TrainingImage {
    public var input: PreparedImage
    public var target: TrainingTarget
    public var clippedBoxes: Int
}

public enum TrainingAugment {
    /// A box that lies entirely outside the image (nothing left after clipping) is an error naming the image
    /// and the box, or, with `dropOutside` (`data.invalid_boxes: drop`), left out with its label.
    public static func prepare(
        _ sample: DetectionSample, image: RGBImage, config: DetectorConfig, scales: [Int], flip: Bool,
        dropOutside: Bool = false, rng: inout SeededRNG
    ) throws -> TrainingImage {
        var input = config.input
        input.minSize = scales.isEmpty ? input.minSize : scales[rng.int(below: scales.count)]
        let doFlip = flip && rng.int(below: 2) == 1
        let img = doFlip ? image.flippedHorizontally() : image
        let p = try Preprocess.prepare(img, input: input)
        var clipped = 0
        var flat: [Float] = [], labels: [Int] = []
        let W = Float(image.width), H = Float(image.height)
        for (b, label) in zip(sample.boxes, sample.labels) {
            var x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3]
            if x1 < 0 || y1 < 0 || x2 > W || y2 > H { clipped += 1 }
            x1 = min(max(x1, 0), W); x2 = min(max(x2, 0), W); y1 = min(max(y1, 0), H); y2 = min(max(y2, 0), H)
            guard x2 > x1 && y2 > y1 else {
                if dropOutside { continue }
                throw DetectorError(
                    "\(sample.image.path): box \(b) lies entirely outside the \(image.width)x\(image.height) image "
                        + "(set data.invalid_boxes: drop to leave such boxes out)")
            }
            labels.append(label)
            if doFlip { (x1, x2) = (W - x2, W - x1) }
            flat += [x1 * p.scaleX, y1 * p.scaleY, x2 * p.scaleX, y2 * p.scaleY]
        }
        return TrainingImage(
            input: p, target: TrainingTarget(boxes: Tensor(flat, shape: [labels.count, 4]), labels: labels),
            clippedBoxes: clipped)
    }
}

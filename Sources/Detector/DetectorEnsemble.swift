import Foundation
import Engine
import Imaging
import Detection
import Support

/// Test-time augmentation for detection, as Detectron2's `GeneralizedRCNNWithTTA` does it: the image is run at
/// several shorter sides, and mirrored, one pass at a time; every pass's detections (its own score threshold,
/// per-class NMS and top-k) are mapped back to the image's pixels and merged.
public struct TestTimeAugmentation: Equatable, Sendable {
    /// Shorter sides of the passes (the longer-side cap scales with each: maxSize * side / minSize).
    public var scales: [Int]
    /// Also run every scale on the mirrored image.
    public var flip: Bool

    public init(scales: [Int], flip: Bool) {
        self.scales = scales
        self.flip = flip
    }

    /// A set around a model's test size: 0.75x, 1x and 1.25x its shorter side, rounded to multiples of 16
    /// (448 -> 336, 448, 560), each also mirrored.
    public static func around(minSize: Int) -> TestTimeAugmentation {
        let base = minSize > 0 ? minSize : 600
        let scales = [0.75, 1.0, 1.25].map { f in max(16, Int((Double(base) * f / 16).rounded()) * 16) }
        return TestTimeAugmentation(scales: Array(Set(scales)).sorted(), flip: true)
    }
}

extension TestTimeAugmentation {
    /// From command-line settings (`--tta`, `--tta-scales 384,448,512`, `--[no-]tta-flip`): nil when neither
    /// `tta` nor `scales` is given; `tta` alone means `around(minSize:)`. Throws naming the option for a list
    /// that is not shorter sides from 16 to 4096.
    public static func fromOptions(tta: Bool, scales: String?, flip: Bool, minSize: Int) throws -> TestTimeAugmentation?
    {
        guard tta || scales != nil else { return nil }
        guard let scales else {
            var a = TestTimeAugmentation.around(minSize: minSize)
            a.flip = flip
            return a
        }
        let sizes: [Int]
        do { sizes = try parseSizeList(scales, range: 16...4096) } catch let e as RecipeError {
            throw DetectorError("--tta-scales \(scales): \(e) (give e.g. 384,448,512)")
        }
        return TestTimeAugmentation(scales: sizes, flip: flip)
    }
}

/// Several detectors of the same classes and/or test-time augmentation, merged into one set of detections:
/// the passes run one at a time (memory stays that of one pass), their detections are pooled, per-class NMS
/// at the first member's `test.nms_threshold` keeps the best of overlapping boxes (optionally with box voting:
/// each kept box becomes the score-weighted mean of itself and the boxes it suppressed; its score is kept),
/// then the first member's `test.detections_per_image` best.
public struct DetectorEnsemble {
    public var members: [DetectorRunner]
    /// nil: one pass per member at its own input size.
    public var augmentation: TestTimeAugmentation?
    public var boxVoting = false

    /// Throws when the members do not have the same class list. `names` label the members in messages.
    public init(
        _ members: [DetectorRunner], names: [String], augmentation: TestTimeAugmentation? = nil,
        boxVoting: Bool = false
    ) throws {
        guard let first = members.first else { throw DetectorError("an ensemble needs at least one detector") }
        precondition(names.count == members.count, "one name per member")
        for (m, name) in zip(members, names).dropFirst() where m.config.classNames != first.config.classNames {
            func listed(_ c: [String]) -> String {
                "(\(c.prefix(6).joined(separator: ", "))\(c.count > 6 ? ", ..." : ""))"
            }
            let (a, b) = (m.config.classNames, first.config.classNames)
            throw DetectorError(
                "\(name) detects \(a.count) classes \(listed(a)) but \(names[0]) detects \(b.count) \(listed(b)): "
                + "an ensemble needs detectors of the same classes in the same order")
        }
        if let a = augmentation {
            guard !a.scales.isEmpty, a.scales.allSatisfy({ $0 >= 16 && $0 <= 4096 }) else {
                throw DetectorError("test-time scales must be shorter sides from 16 to 4096, got \(a.scales)")
            }
        }
        self.members = members
        self.augmentation = augmentation
        self.boxVoting = boxVoting
    }

    /// How many passes one image takes.
    public var passCount: Int {
        members.count * (augmentation.map { $0.scales.count * ($0.flip ? 2 : 1) } ?? 1)
    }

    /// The detections of one image, in its own pixels, best first.
    public func detect(_ image: RGBImage) throws -> [DetectedObject] {
        var pooled: [DetectedObject] = []
        let mirrored = augmentation?.flip == true ? image.flippedHorizontally() : nil
        for member in members {
            guard let a = augmentation else {
                pooled += try member.detect(image)
                continue
            }
            for side in a.scales {
                let input = member.config.input
                var pass = input
                pass.minSize = side
                if input.maxSize > 0 && input.minSize > 0 {
                    pass.maxSize = max(
                        side, Int((Double(input.maxSize) * Double(side) / Double(input.minSize)).rounded()))
                }
                pooled += try member.detect(image, input: pass)
                if let mirrored {
                    let w = Float(image.width)
                    pooled += try member.detect(mirrored, input: pass).map { o in
                        var m = o
                        let c = o.corners
                        m.corners = [w - c[2], c[1], w - c[0], c[3]]
                        return m
                    }
                }
            }
        }
        let test = members[0].config.test
        return Self.merge(
            pooled, nmsThreshold: test.nmsThreshold, maxDetections: test.detectionsPerImage, boxVoting: boxVoting)
    }

    /// Per-class NMS over pooled detections (torchvision's IoU, suppressing IoU > threshold, best score
    /// first, ties in input order), optional box voting, then the `maxDetections` best, best first.
    public static func merge(
        _ detections: [DetectedObject], nmsThreshold: Float, maxDetections: Int,
        boxVoting: Bool = false
    ) -> [DetectedObject] {
        guard !detections.isEmpty, maxDetections > 0 else { return [] }
        let boxes = Tensor(detections.flatMap(\.corners), shape: [detections.count, 4])
        let scores = Tensor(detections.map(\.score), shape: [detections.count])
        let keep = batchedNMS(
            boxes, scores: scores, classes: detections.map(\.label), iouThreshold: Double(nmsThreshold),
            maxOutputs: boxVoting ? .max : maxDetections)
        guard boxVoting else { return keep.map { detections[$0] } }
        // Each suppressed box goes to the kept box that suppressed it in the greedy pass: the best-scoring kept
        // box of its class overlapping it with IoU > threshold.
        let order = detections.bestFirstIndices()
        let kept = Set(keep)
        let overlaps = pairwiseIoU(boxes, boxes)  // the IoU the NMS used
        let n = detections.count
        var voters: [Int: [Int]] = [:]
        var keptSoFar: [Int: [Int]] = [:]  // per class, kept boxes in greedy order
        for i in order {
            let c = detections[i].label
            if kept.contains(i) {
                voters[i] = [i]
                keptSoFar[c, default: []].append(i)
                continue
            }
            for k in keptSoFar[c] ?? [] where overlaps.data[i * n + k] > nmsThreshold {
                voters[k]!.append(i)
                break
            }
        }
        let voted = keep.map { k -> DetectedObject in
            var o = detections[k]
            let group = voters[k] ?? [k]
            let total = group.reduce(0.0) { $0 + Double(detections[$1].score) }
            guard total > 0 else { return o }
            let corners = group.map { detections[$0].corners }
            o.corners = (0..<4).map { j in
                Float(zip(group, corners).reduce(0.0) { $0 + Double(detections[$1.0].score) * Double($1.1[j]) } / total)
            }
            return o
        }
        return Array(voted.prefix(maxDetections))
    }
}

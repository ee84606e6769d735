import Foundation
import Detection
import Imaging
import Evaluation

/// Pictures and text of detections: boxes in a per-class colour with a "name 0.93" tag, a table, and
/// COCO results JSON.
public enum DetectionOutput {
    /// The score at or above which `detect` draws and lists a detection by default (as Detectron2's demo
    /// draws at 0.5 while its evaluator keeps everything above 0.05).
    public static let defaultDrawThreshold: Float = 0.5

    /// Draws the detections onto a copy of `image`: the highest score first gets the best tag position and is
    /// drawn on top; tags never hide each other and stay inside the image (`TagLayout`). Draws every object
    /// given: filter by score first.
    public static func draw(_ objects: [DetectedObject], on image: RGBImage) -> RGBImage {
        var img = image
        let thickness = max(2, min(image.width, image.height) / 250)
        let scale = min(image.width, image.height) >= 600 ? 2 : 1
        img.drawLabeledBoxes(
            objects.bestFirst().map { o in
                LabeledBox(
                    x1: o.box.xmin, y1: o.box.ymin, x2: o.box.xmax, y2: o.box.ymax,
                    label: String(format: "%@ %.2f", o.name as NSString, o.score), color: Palette.color(o.label - 1))
            }, thickness: thickness, scale: scale)
        return img
    }

    /// A fixed-width table of detections; `hidden` detections scored below `threshold` (kept in the JSON) are
    /// counted in a last line.
    public static func table(_ objects: [DetectedObject], image: String, hidden: Int = 0, threshold: Float = 0)
        -> String
    {
        var s = "\(image): \(objects.count) detection\(objects.count == 1 ? "" : "s")"
        s += hidden > 0 ? String(format: " scoring >= %.2f\n", threshold) : "\n"
        if !objects.isEmpty {
            s += "  class              score      x1      y1      x2      y2\n"
            for o in objects {
                let name = String(o.name.prefix(16))
                s +=
                    "  " + name + String(repeating: " ", count: 17 - name.count)
                    + String(
                        format: "%7.3f %7.1f %7.1f %7.1f %7.1f\n", o.score, o.box.xmin, o.box.ymin, o.box.xmax,
                        o.box.ymax)
            }
        }
        if hidden > 0 {
            s += "  (\(hidden) more below \(String(format: "%.2f", threshold)), not drawn; all are in --json)\n"
        }
        return s
    }

    /// COCO results entries: image_id, category_id, bbox [x, y, w, h], score, plus category_name.
    /// `categoryId` maps a head label to the data set's id (COCO's ids have gaps); default: the label.
    public static func cocoResults(_ objects: [DetectedObject], imageID: Any, categoryId: (Int) -> Int = { $0 })
        -> [[String: Any]]
    {
        objects.map { o in
            let c = o.corners  // widths in Float, as the detector computes boxes
            return [
                "image_id": imageID, "category_id": categoryId(o.label), "category_name": o.name,
                "bbox": [c[0], c[1], c[2] - c[0], c[3] - c[1]].map { Double($0) },
                "score": Double(o.score)
            ]
        }
    }

    /// Detections checked against an image's annotation, counting only the detections scoring >= `minScore`
    /// (the ones `detect` draws), so that a passing check means the picture shows exactly the annotated
    /// objects. Going through those detections from the highest score, each one claims the unclaimed object of
    /// its class it overlaps most (IoU >= 0.5, continuous IoU as COCO computes it); a detection that claims
    /// nothing is a false positive (a wrong class, a bad box, or a duplicate of an object already claimed). An
    /// object is found when the detection that claimed it overlaps it with IoU >= `minIoU`. Difficult objects
    /// need not be found, and detections on them are not false positives.
    public static func check(
        _ found: [DetectedObject], against objects: [VOCObject], minIoU: Float = 0.7,
        minScore: Float = defaultDrawThreshold
    ) -> AnnotationCheck {
        func iou(_ a: [Float], _ b: BoxCorners) -> Float {
            Float(
                cocoIoU(
                    detection: BoxXYWH(
                        x: Double(a[0]), y: Double(a[1]), width: Double(a[2] - a[0]), height: Double(a[3] - a[1])),
                    groundTruth: BoxXYWH(x: b.xmin, y: b.ymin, width: b.xmax - b.xmin, height: b.ymax - b.ymin),
                    crowd: false))
        }
        let shown = found.filter { $0.score >= minScore }.bestFirst()
        var claimedIoU = [Float?](repeating: nil, count: objects.count)
        var c = AnnotationCheck(objects: objects.filter { !$0.difficult }.count)
        for d in shown {
            var best = -1
            var bestIoU: Float = 0.5
            for (k, o) in objects.enumerated() where o.name == d.name && claimedIoU[k] == nil {
                let v = iou(d.corners, o.box)
                if v >= bestIoU { best = k; bestIoU = v }
            }
            if best >= 0 { claimedIoU[best] = bestIoU } else { c.falsePositives.append(d) }
        }
        for (k, o) in objects.enumerated() where !o.difficult && (claimedIoU[k] ?? 0) < minIoU {
            let bestAny = shown.filter { $0.name == o.name }.map { iou($0.corners, o.box) }.max() ?? 0
            c.missed.append((o, bestAny))
        }
        return c
    }
}

/// The outcome of `DetectionOutput.check`.
public struct AnnotationCheck {
    /// Annotated (non-difficult) objects.
    public var objects: Int
    /// Objects without a detection of their class at the IoU asked for, with the best IoU there was.
    public var missed: [(object: VOCObject, bestIoU: Float)] = []
    public var falsePositives: [DetectedObject] = []
    public var passed: Bool { missed.isEmpty && falsePositives.isEmpty }
    public init(objects: Int) { self.objects = objects }

    public func summary(minIoU: Float, fpScore: Float) -> String {
        if passed {
            return String(
                format:
                    "check: all %d annotated objects found (right class, IoU >= %.2f) by the detections scoring >= "
                    + "%.2f, "
                    + "no false positive or duplicate among them", objects, minIoU, fpScore)
        }
        var s = String(
            format:
                "check FAILED: %d of %d objects found (IoU >= %.2f), %d false positives or duplicates scoring >= %.2f",
            objects - missed.count, objects, minIoU, falsePositives.count, fpScore)
        for (o, b) in missed {
            s += String(
                format: "\n  missed %@ at [%.0f, %.0f, %.0f, %.0f] (best IoU %.2f)", o.name as NSString, o.box.xmin,
                o.box.ymin, o.box.xmax, o.box.ymax, b)
        }
        for d in falsePositives {
            s += String(
                format: "\n  false positive %@ %.3f at [%.0f, %.0f, %.0f, %.0f]", d.name as NSString, d.score,
                d.box.xmin,
                d.box.ymin, d.box.xmax, d.box.ymax)
        }
        return s
    }
}

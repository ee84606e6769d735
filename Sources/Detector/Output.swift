import Foundation
import Imaging

/// One detected object, in the original image's pixel coordinates.
public struct DetectedObject: Codable, Equatable, Sendable {
    /// Corners (x1, y1, x2, y2).
    public var box: [Float]
    public var score: Float
    /// 1-based class index (0 is background), as in the head's outputs and VOC category ids.
    public var label: Int
    public var name: String
    public init(box: [Float], score: Float, label: Int, name: String) {
        self.box = box; self.score = score; self.label = label; self.name = name
    }
}

/// Pictures and text of detections: boxes in a per-class colour with a "name 0.93" tag, a table, and
/// COCO results JSON.
public enum DetectionOutput {
    /// Draws the detections onto a copy of `image` (highest score drawn last, so on top).
    public static func draw(_ objects: [DetectedObject], on image: RGBImage) -> RGBImage {
        var img = image
        let thickness = max(2, min(image.width, image.height) / 250)
        let scale = min(image.width, image.height) >= 600 ? 2 : 1
        for o in objects.sorted(by: { $0.score < $1.score }) {
            let color = Palette.color(o.label - 1)
            img.drawLabeledBox(x1: Double(o.box[0]), y1: Double(o.box[1]), x2: Double(o.box[2]), y2: Double(o.box[3]),
                               label: String(format: "%@ %.2f", o.name as NSString, o.score), color: color,
                               thickness: thickness, scale: scale)
        }
        return img
    }

    /// A fixed-width table of detections.
    public static func table(_ objects: [DetectedObject], image: String) -> String {
        var s = "\(image): \(objects.count) detection\(objects.count == 1 ? "" : "s")\n"
        if objects.isEmpty { return s }
        s += "  class              score      x1      y1      x2      y2\n"
        for o in objects {
            let name = String(o.name.prefix(16))
            s += "  " + name + String(repeating: " ", count: 17 - name.count)
                + String(format: "%7.3f %7.1f %7.1f %7.1f %7.1f\n", o.score, o.box[0], o.box[1], o.box[2], o.box[3])
        }
        return s
    }

    /// COCO results entries: image_id, category_id, bbox [x, y, w, h], score, plus category_name.
    /// `categoryId` maps a head label to the data set's id (COCO's ids have gaps); default: the label.
    public static func cocoResults(_ objects: [DetectedObject], imageID: Any, categoryId: (Int) -> Int = { $0 }) -> [[String: Any]] {
        objects.map { o in
            ["image_id": imageID, "category_id": categoryId(o.label), "category_name": o.name,
             "bbox": [o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]].map { Double($0) },
             "score": Double(o.score)]
        }
    }
}

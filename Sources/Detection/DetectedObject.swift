import Foundation

/// One detected object, in the original image's pixel coordinates.
public struct DetectedObject: Codable, Equatable, Sendable {
    /// The box's corners. The detector computes them in Float (`corners`), so each holds a Float value.
    public var box: BoxCorners
    public var score: Float
    /// 1-based class index (0 is background), as in the head's outputs and VOC category ids.
    public var label: Int
    public var name: String
    public init(box: BoxCorners, score: Float, label: Int, name: String) {
        self.box = box; self.score = score; self.label = label; self.name = name
    }

    /// An object whose corners (x1, y1, x2, y2) were computed in Float.
    public init(corners: [Float], score: Float, label: Int, name: String) {
        self.init(box: BoxCorners(xmin: 0, ymin: 0, xmax: 0, ymax: 0), score: score, label: label, name: name)
        self.corners = corners
    }

    /// The corners (x1, y1, x2, y2) as the Floats they were computed in (box arithmetic that must give the same
    /// bits as the detector's, e.g. widths x2 - x1, mirroring, NMS, stays in Float).
    public var corners: [Float] {
        get { [Float(box.xmin), Float(box.ymin), Float(box.xmax), Float(box.ymax)] }
        set {
            box = BoxCorners(
                xmin: Double(newValue[0]), ymin: Double(newValue[1]), xmax: Double(newValue[2]),
                ymax: Double(newValue[3]))
        }
    }
}

extension DetectedObject {
    /// The object with its numbers as bit patterns: a JSON form that restores every Float exactly, for
    /// sending detections between the processes of a job.
    public struct BitExact: Codable, Equatable, Sendable {
        var box: [UInt32], score: UInt32, label: Int, name: String
        public init(_ o: DetectedObject) {
            box = o.corners.map(\.bitPattern); score = o.score.bitPattern; label = o.label; name = o.name
        }
        public var object: DetectedObject {
            DetectedObject(
                corners: box.map(Float.init(bitPattern:)), score: Float(bitPattern: score), label: label,
                name: name)
        }
    }
}

extension Array where Element == DetectedObject {
    /// Indices from the highest score down; equal scores keep their order.
    public func bestFirstIndices() -> [Int] {
        indices.sorted { self[$0].score != self[$1].score ? self[$0].score > self[$1].score : $0 < $1 }
    }

    /// The detections from the highest score down; equal scores keep their order.
    public func bestFirst() -> [DetectedObject] { bestFirstIndices().map { self[$0] } }
}

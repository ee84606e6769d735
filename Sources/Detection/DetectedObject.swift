import Foundation

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

extension DetectedObject {
    /// The object with its numbers as bit patterns: a JSON form that restores every Float exactly, for
    /// sending detections between the processes of a job.
    public struct BitExact: Codable, Equatable, Sendable {
        var box: [UInt32], score: UInt32, label: Int, name: String
        public init(_ o: DetectedObject) {
            box = o.box.map(\.bitPattern); score = o.score.bitPattern; label = o.label; name = o.name
        }
        public var object: DetectedObject {
            DetectedObject(
                box: box.map(Float.init(bitPattern:)), score: Float(bitPattern: score), label: label,
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

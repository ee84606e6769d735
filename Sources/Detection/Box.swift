import Foundation

// The box types shared by detection output and evaluation.

/// A box as COCO writes it: top-left corner and size, in pixels (`[x, y, w, h]`).
public struct BoxXYWH: Codable, Equatable, Sendable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    /// `width * height`: COCO's detection area (ground truth uses the annotation's own `area`).
    @inlinable public var area: Double { width * height }
}

/// A box as Pascal VOC writes it: inclusive pixel corners (`xmin, ymin, xmax, ymax`).
public struct BoxCorners: Codable, Equatable, Sendable {
    public var xmin: Double
    public var ymin: Double
    public var xmax: Double
    public var ymax: Double

    public init(xmin: Double, ymin: Double, xmax: Double, ymax: Double) {
        self.xmin = xmin
        self.ymin = ymin
        self.xmax = xmax
        self.ymax = ymax
    }

    /// The corners a COCO-style `[x, y, w, h]` detection names against VOC ground truth: `(x, y, x+w, y+h)`.
    public init(_ box: BoxXYWH) {
        self.init(xmin: box.x, ymin: box.y, xmax: box.x + box.width, ymax: box.y + box.height)
    }
}

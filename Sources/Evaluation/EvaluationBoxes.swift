/// A box as COCO writes it: top-left corner and size, in pixels (`[x, y, w, h]`).
public struct BoxXYWH: Equatable, Sendable {
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
public struct BoxCorners: Equatable, Sendable {
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

/// COCO's box IoU (pycocotools `maskApi.c` `bbIou`), operation for operation so that results are
/// bit-identical: no +1, and against a crowd region the union is the detection's own area, so a crowd
/// region can absorb any detection that lies inside it.
@inlinable
public func cocoIoU(detection d: BoxXYWH, groundTruth g: BoxXYWH, crowd: Bool) -> Double {
    let w = min(d.width + d.x, g.width + g.x) - max(d.x, g.x)
    if w <= 0 { return 0 }
    let h = min(d.height + d.y, g.height + g.y) - max(d.y, g.y)
    if h <= 0 { return 0 }
    let detectionArea = d.width * d.height
    let intersection = w * h
    let union = crowd ? detectionArea : detectionArea + g.width * g.height - intersection
    return intersection / union
}

/// Pascal VOC's IoU (py-faster-rcnn `voc_eval`): corners are inclusive pixel indices, so a side is
/// `max - min + 1`; same operation order as the numpy reference.
@inlinable
public func vocIoU(_ b: BoxCorners, _ g: BoxCorners) -> Double {
    let iw = max(min(g.xmax, b.xmax) - max(g.xmin, b.xmin) + 1, 0)
    let ih = max(min(g.ymax, b.ymax) - max(g.ymin, b.ymin) + 1, 0)
    let intersection = iw * ih
    let union =
        (b.xmax - b.xmin + 1) * (b.ymax - b.ymin + 1) + (g.xmax - g.xmin + 1) * (g.ymax - g.ymin + 1) - intersection
    return intersection / union
}

import Detection

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

import Foundation
import Engine

// Boxes throughout this module are (N, 4) Float32 tensors of corners (x1, y1, x2, y2) in pixels of the
// image they belong to (x to the right, y down). A box's width is x2 - x1 and its height y2 - y1, with no
// "+1" (the torchvision / Detectron2 convention; Pascal VOC's inclusive-pixel +1 lives in Evaluation).
// None of these functions records a gradient: box geometry is target bookkeeping, not part of the graph.

/// The number of boxes in `boxes` after checking that it is (N, 4).
@usableFromInline
func boxCount(_ boxes: Tensor, _ function: String) -> Int {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4, "\(function): boxes must be (N, 4), got \(boxes.shape)")
    return boxes.shape[0]
}

/// Areas (x2 - x1) * (y2 - y1) of (N, 4) boxes -> (N). Degenerate boxes (x2 < x1) give a non-positive area,
/// as in torchvision's `box_area`.
public func boxArea(_ boxes: Tensor) -> Tensor {
    let n = boxCount(boxes, "boxArea")
    let out = Tensor(uninitialized: [n])
    let b = boxes.data, o = out.data
    for i in 0..<n { o[i] = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]) }
    return out
}

/// Intersection over union of every box in `a` (N, 4) with every box in `b` (M, 4) -> (N, M).
///
/// Float32 operations in torchvision's `box_iou` order: inter = max(min(x2) - max(x1), 0) * max(min(y2) -
/// max(y1), 0), union = (area_a + area_b) - inter, iou = inter / union. Where the intersection is 0 the
/// IoU is 0 (Detectron2's rule), so two degenerate boxes give 0 instead of 0 / 0 = NaN; boxes that only
/// touch along an edge have IoU exactly 0.
public func pairwiseIoU(_ a: Tensor, _ b: Tensor) -> Tensor {
    let n = boxCount(a, "pairwiseIoU (first)"), m = boxCount(b, "pairwiseIoU (second)")
    let out = Tensor(uninitialized: [n, m])
    if n == 0 || m == 0 { return out }
    let areaA = boxArea(a), areaB = boxArea(b)
    let pa = a.data, pb = b.data, aa = areaA.data, ab = areaB.data, po = out.data
    // a: (N, 4), b: (M, 4), out: (N, M)
    Threading.parallelFor(n, minPerThread: max(1, 16_384 / m)) { i in
        let ax1 = pa[4 * i], ay1 = pa[4 * i + 1], ax2 = pa[4 * i + 2], ay2 = pa[4 * i + 3], areaI = aa[i]
        let row = po + i * m
        for j in 0..<m {
            let w = max(min(ax2, pb[4 * j + 2]) - max(ax1, pb[4 * j]), 0)
            let h = max(min(ay2, pb[4 * j + 3]) - max(ay1, pb[4 * j + 1]), 0)
            let inter = w * h
            row[j] = inter > 0 ? inter / ((areaI + ab[j]) - inter) : 0
        }
    }
    return out
}

/// Boxes clamped to the image: x into [0, width], y into [0, height] (torchvision's
/// `clip_boxes_to_image`; the far edge is `width`, not `width - 1`, because coordinates are continuous).
public func clipBoxes(_ boxes: Tensor, to imageSize: (height: Int, width: Int)) -> Tensor {
    let n = boxCount(boxes, "clipBoxes")
    precondition(
        imageSize.height >= 0 && imageSize.width >= 0,
        "clipBoxes: image size must not be negative, got \(imageSize)")
    let out = Tensor(uninitialized: [n, 4])
    let w = Float(imageSize.width), h = Float(imageSize.height)
    let b = boxes.data, o = out.data
    for i in 0..<n {
        o[4 * i] = min(max(b[4 * i], 0), w)
        o[4 * i + 1] = min(max(b[4 * i + 1], 0), h)
        o[4 * i + 2] = min(max(b[4 * i + 2], 0), w)
        o[4 * i + 3] = min(max(b[4 * i + 3], 0), h)
    }
    return out
}

/// Indices (ascending) of the boxes whose width and height are both at least `minSize`
/// (torchvision's `remove_small_boxes`: `>=`, so `minSize` 0 keeps empty boxes but drops inverted ones).
public func removeSmall(_ boxes: Tensor, minSize: Float) -> [Int] {
    let n = boxCount(boxes, "removeSmall")
    let b = boxes.data
    var keep: [Int] = []
    keep.reserveCapacity(n)
    for i in 0..<n where b[4 * i + 2] - b[4 * i] >= minSize && b[4 * i + 3] - b[4 * i + 1] >= minSize {
        keep.append(i)
    }
    return keep
}

/// Rows `indices` of a (N, D) tensor -> (indices.count, D), in the given order (for boxes, deltas, scores
/// reshaped to (N, 1)). Not recorded for autograd.
public func selectRows(_ t: Tensor, _ indices: [Int]) -> Tensor {
    precondition(t.rank >= 1, "selectRows: tensor must have at least one dimension, got \(t.shape)")
    let n = t.shape[0], d = n == 0 ? t.shape.dropFirst().reduce(1, *) : t.count / n
    var shape = t.shape
    shape[0] = indices.count
    let out = Tensor(uninitialized: shape)
    for (k, i) in indices.enumerated() {
        precondition(i >= 0 && i < n, "selectRows: index \(i) out of range for \(n) rows")
        (out.data + k * d).update(from: t.data + i * d, count: d)
    }
    return out
}

/// Rows of `a` then rows of `b` (no gradient).
public func concatRows(_ a: Tensor, _ b: Tensor) -> Tensor {
    let inner = a.shape.dropFirst().reduce(1, *)
    var s = a.shape; s[0] += b.shape[0]
    let y = Tensor(uninitialized: s)
    y.data.update(from: a.data, count: a.count)
    (y.data + a.count).update(from: b.data, count: b.count)
    precondition(b.count == b.shape[0] * inner, "concatRows: shapes \(a.shape) and \(b.shape) differ")
    return y
}

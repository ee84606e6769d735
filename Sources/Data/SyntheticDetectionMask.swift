import Foundation
import Imaging

/// A set of pixels stored as horizontal runs (row `y`, columns `x0 ..< x1`), sorted by row and then column,
/// never overlapping. The synthetic detection generator rasterises every object and distractor into one of
/// these; `SyntheticScene.masks` exposes them so that tests can check boxes against the pixels themselves.
public struct SyntheticMask: Equatable, Sendable {
    public struct Span: Equatable, Sendable {
        public var y: Int
        public var x0: Int
        public var x1: Int
        public init(y: Int, x0: Int, x1: Int) { self.y = y; self.x0 = x0; self.x1 = x1 }
    }

    public private(set) var spans: [Span]
    /// Number of pixels in the mask.
    public private(set) var pixelCount: Int

    /// `spans` must be sorted by (y, x0) and must not overlap; empty spans are dropped.
    public init(spans: [Span]) {
        self.spans = spans.filter { $0.x1 > $0.x0 }
        pixelCount = self.spans.reduce(0) { $0 + $1.x1 - $1.x0 }
    }

    public var isEmpty: Bool { pixelCount == 0 }

    /// The smallest half-open rectangle holding every pixel (nil when empty).
    public var bounds: PixelRect? {
        guard let first = spans.first, let last = spans.last else { return nil }
        var x0 = Int.max, x1 = Int.min
        for s in spans { x0 = min(x0, s.x0); x1 = max(x1, s.x1) }
        return PixelRect(x0: x0, y0: first.y, x1: x1, y1: last.y + 1)
    }

    public func contains(x: Int, y: Int) -> Bool {
        // Binary search for the first span of row y.
        var lo = 0, hi = spans.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if spans[mid].y < y { lo = mid + 1 } else { hi = mid }
        }
        var i = lo
        while i < spans.count && spans[i].y == y {
            if x >= spans[i].x0 && x < spans[i].x1 { return true }
            i += 1
        }
        return false
    }

    /// The mask moved by (dx, dy) pixels.
    public func translated(dx: Int, dy: Int) -> SyntheticMask {
        var m = self
        for i in m.spans.indices { m.spans[i].y += dy; m.spans[i].x0 += dx; m.spans[i].x1 += dx }
        return m
    }

    /// The part of the mask inside a `width` x `height` image.
    public func clipped(width: Int, height: Int) -> SyntheticMask {
        SyntheticMask(
            spans: spans.compactMap { s in
                guard s.y >= 0, s.y < height else { return nil }
                let a = max(s.x0, 0), b = min(s.x1, width)
                return b > a ? Span(y: s.y, x0: a, x1: b) : nil
            })
    }

    /// The union of several masks (overlapping or touching runs are merged).
    public static func union(_ masks: [SyntheticMask]) -> SyntheticMask {
        var all = masks.flatMap(\.spans)
        all.sort { $0.y != $1.y ? $0.y < $1.y : $0.x0 < $1.x0 }
        var merged: [Span] = []
        merged.reserveCapacity(all.count)
        for s in all {
            if var last = merged.last, last.y == s.y, s.x0 <= last.x1 {
                last.x1 = max(last.x1, s.x1)
                merged[merged.count - 1] = last
            } else {
                merged.append(s)
            }
        }
        return SyntheticMask(spans: merged)
    }

    /// Rasterises closed polygons with the even-odd rule, sampling at pixel centres: pixel (x, y) is inside
    /// when the point (x + 0.5, y + 0.5) is. Points are (x, y) in pixel coordinates (x to the right, y down).
    /// A second contour inside the first makes a hole (a ring).
    public static func polygons(_ contours: [[SIMD2<Double>]]) -> SyntheticMask {
        var edges: [(x0: Double, y0: Double, x1: Double, y1: Double)] = []
        var minY = Double.infinity, maxY = -Double.infinity
        for c in contours where c.count >= 3 {
            for i in c.indices {
                let a = c[i], b = c[(i + 1) % c.count]
                guard a.x.isFinite, a.y.isFinite, b.x.isFinite, b.y.isFinite else { return SyntheticMask(spans: []) }
                minY = min(minY, a.y); maxY = max(maxY, a.y)
                if a.y != b.y { edges.append((a.x, a.y, b.x, b.y)) }
            }
        }
        guard !edges.isEmpty else { return SyntheticMask(spans: []) }
        // Rows whose centre can lie inside: y + 0.5 in [minY, maxY).
        let firstRow = Int((minY - 0.5).rounded(.up)), lastRow = Int((maxY - 0.5).rounded(.up)) - 1
        var spans: [Span] = []
        spans.reserveCapacity(max(0, lastRow - firstRow + 1))
        var xs: [Double] = []
        xs.reserveCapacity(16)
        if firstRow <= lastRow {
            for y in firstRow...lastRow {
                let yc = Double(y) + 0.5
                xs.removeAll(keepingCapacity: true)
                for e in edges where (e.y0 <= yc && yc < e.y1) || (e.y1 <= yc && yc < e.y0) {
                    xs.append(e.x0 + (yc - e.y0) * (e.x1 - e.x0) / (e.y1 - e.y0))
                }
                if xs.count < 2 { continue }
                xs.sort()
                var k = 0
                while k + 1 < xs.count {
                    // Centres x + 0.5 in [xs[k], xs[k+1]).
                    let a = Int((xs[k] - 0.5).rounded(.up)), b = Int((xs[k + 1] - 0.5).rounded(.up))
                    if b > a {
                        if let last = spans.last, last.y == y, a <= last.x1 {
                            spans[spans.count - 1].x1 = max(last.x1, b)
                        } else {
                            spans.append(Span(y: y, x0: a, x1: b))
                        }
                    }
                    k += 2
                }
            }
        }
        return SyntheticMask(spans: spans)
    }

    /// A straight stroke from `a` to `b`, `thickness` pixels wide, with square ends extending half the
    /// thickness past each end point.
    static func stroke(_ a: SIMD2<Double>, _ b: SIMD2<Double>, thickness: Double) -> SyntheticMask {
        var d = b - a
        let len = (d * d).sum().squareRoot()
        d = len > 1e-9 ? d / len : SIMD2(1, 0)
        let n = SIMD2(-d.y, d.x) * (thickness / 2)
        let e = d * (thickness / 2)
        return polygons([[a - e + n, b + e + n, b + e - n, a - e - n]])
    }
}

/// A half-open pixel rectangle: columns x0 ..< x1, rows y0 ..< y1.
public struct PixelRect: Equatable, Sendable {
    public var x0: Int, y0: Int, x1: Int, y1: Int

    public init(x0: Int, y0: Int, x1: Int, y1: Int) {
        self.x0 = x0
        self.y0 = y0
        self.x1 = x1
        self.y1 = y1
    }

    /// The rectangle with top-left (x, y) and the given size (saturating instead of overflowing).
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.init(x0: x, y0: y, x1: x.clampedAdd(max(width, 0)), y1: y.clampedAdd(max(height, 0)))
    }

    public var width: Int { max(x1 - x0, 0) }
    public var height: Int { max(y1 - y0, 0) }
    public var isEmpty: Bool { x1 <= x0 || y1 <= y0 }

    @inlinable
    public func contains(x: Int, y: Int) -> Bool { x >= x0 && x < x1 && y >= y0 && y < y1 }

    public func intersection(_ other: PixelRect) -> PixelRect {
        PixelRect(x0: max(x0, other.x0), y0: max(y0, other.y0), x1: min(x1, other.x1), y1: min(y1, other.y1))
    }
}

/// A painter over an image's pixel buffer, valid only inside `RGBImage.withCanvas`. Every write is clipped to
/// `clip` (which never extends past the image), so callers can pass any coordinates.
struct Canvas {
    let base: UnsafeMutablePointer<UInt8>
    let width: Int
    let height: Int
    var clip: PixelRect

    @inline(__always)
    func set(_ x: Int, _ y: Int, _ color: RGBColor) {
        guard clip.contains(x: x, y: y) else { return }
        let p = base + 3 * (y * width + x)
        p[0] = color.r
        p[1] = color.g
        p[2] = color.b
    }

    /// Fills the clipped rectangle.
    func fill(_ rect: PixelRect, _ color: RGBColor) {
        let r = rect.intersection(clip)
        guard !r.isEmpty else { return }
        for y in r.y0..<r.y1 {
            var p = base + 3 * (y * width + r.x0)
            for _ in r.x0..<r.x1 {
                p[0] = color.r
                p[1] = color.g
                p[2] = color.b
                p += 3
            }
        }
    }

    /// A line from (ax, ay) to (bx, by) (pixel centres), `thickness` pixels wide with round ends.
    /// Endpoints may be anywhere (even far outside or non-finite: then nothing is drawn); the segment is clipped
    /// analytically before rasterising, so the cost depends only on the visible length.
    func line(_ ax: Double, _ ay: Double, _ bx: Double, _ by: Double, _ color: RGBColor, thickness: Int) {
        guard thickness > 0, ax.isFinite, ay.isFinite, bx.isFinite, by.isFinite, !clip.isEmpty else { return }
        let margin = Double(thickness)
        guard
            let (cx0, cy0, cx1, cy1) = clipSegment(
                ax, ay, bx, by,
                minX: Double(clip.x0) - margin, minY: Double(clip.y0) - margin,
                maxX: Double(clip.x1) + margin, maxY: Double(clip.y1) + margin)
        else { return }
        var x = Int(cx0.rounded()), y = Int(cy0.rounded())
        let xEnd = Int(cx1.rounded()), yEnd = Int(cy1.rounded())
        let stamp = Canvas.stamp(thickness: thickness)
        // Bresenham
        let dx = abs(xEnd - x), dy = -abs(yEnd - y)
        let sx = x < xEnd ? 1 : -1, sy = y < yEnd ? 1 : -1
        var error = dx + dy
        while true {
            if stamp.count == 1 {
                set(x, y, color)
            } else {
                for (ox, oy) in stamp { set(x + ox, y + oy, color) }
            }
            if x == xEnd && y == yEnd { break }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }

    /// A filled disc of the given diameter centred on pixel (cx, cy).
    func disc(_ cx: Int, _ cy: Int, diameter: Int, _ color: RGBColor) {
        for (ox, oy) in Canvas.stamp(thickness: diameter) { set(cx + ox, cy + oy, color) }
    }

    /// Pixel offsets of a disc `thickness` pixels across (a square for 1 and 2).
    static func stamp(thickness: Int) -> [(Int, Int)] {
        let t = min(max(thickness, 1), 256)
        let lo = -(t - 1) / 2, hi = t / 2
        let centre = Double(hi + lo) / 2
        let radius2 = Double(t * t) / 4 + 0.25
        var offsets = [(Int, Int)]()
        for oy in lo...hi {
            for ox in lo...hi {
                let ddx = Double(ox) - centre, ddy = Double(oy) - centre
                if t <= 2 || ddx * ddx + ddy * ddy <= radius2 { offsets.append((ox, oy)) }
            }
        }
        return offsets
    }

    /// Draws one line of `text` with the bitmap font; (x, y) is the top-left of the first cell.
    /// With `vertical`, the text is rotated 90 degrees counter-clockwise (reads bottom to top) and (x, y) is the
    /// top-left of the rotated ink box.
    func text(_ text: String, x: Int, y: Int, color: RGBColor, scale: Int, vertical: Bool = false) {
        let s = BitmapFont.clampedScale(scale)
        let cellW = BitmapFont.cellWidth, cellH = BitmapFont.cellHeight
        let inkWidth = BitmapFont.textSize(text, scale: s).width
        var lineIndex = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            for (column, scalar) in line.unicodeScalars.enumerated() {
                let rows = BitmapFont.rows(for: scalar)
                for (row, bits) in rows.enumerated() where bits != 0 {
                    for gx in 0..<BitmapFont.glyphWidth where bits & (0x10 >> gx) != 0 {
                        let tx = (column * cellW + gx) * s  // along the text
                        let ty = (lineIndex * cellH + row) * s  // down the text
                        if vertical {
                            fill(
                                PixelRect(x: x.clampedAdd(ty), y: y.clampedAdd(inkWidth - tx - s), width: s, height: s),
                                color)
                        } else {
                            fill(PixelRect(x: x.clampedAdd(tx), y: y.clampedAdd(ty), width: s, height: s), color)
                        }
                    }
                }
            }
            lineIndex += 1
        }
    }
}

/// Liang-Barsky clipping of the segment (x0, y0)-(x1, y1) to a rectangle; nil when nothing is left.
func clipSegment(
    _ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double,
    minX: Double, minY: Double, maxX: Double, maxY: Double
) -> (Double, Double, Double, Double)? {
    let dx = x1 - x0, dy = y1 - y0
    var t0 = 0.0, t1 = 1.0
    for (p, q) in [(-dx, x0 - minX), (dx, maxX - x0), (-dy, y0 - minY), (dy, maxY - y0)] {
        if p == 0 {
            if q < 0 { return nil }
        } else {
            let r = q / p
            if p < 0 {
                if r > t1 { return nil }
                if r > t0 { t0 = r }
            } else {
                if r < t0 { return nil }
                if r < t1 { t1 = r }
            }
        }
    }
    return (x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy)
}

extension RGBImage {
    /// The whole image as a rectangle.
    public var bounds: PixelRect { PixelRect(x0: 0, y0: 0, x1: width, y1: height) }

    /// Runs `body` with a canvas over the pixels, clipped to `clip` (and always to the image).
    mutating func withCanvas(clip: PixelRect? = nil, _ body: (Canvas) -> Void) {
        let w = width, h = height
        let region = (clip ?? bounds).intersection(PixelRect(x0: 0, y0: 0, x1: w, y1: h))
        guard !region.isEmpty, pixels.count >= w * h * 3 else { return }
        pixels.withUnsafeMutableBufferPointer { buffer in
            body(Canvas(base: buffer.baseAddress!, width: w, height: h, clip: region))
        }
    }
}

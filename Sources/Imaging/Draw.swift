/// Rectangles, boxes, lines and discs. Every function clips to the image: any coordinates (negative, far
/// outside, huge) are accepted and only the visible part is drawn. Sizes or thicknesses below 1 draw nothing.
extension RGBImage {
    /// Fills the `width` x `height` rectangle whose top-left pixel is (x, y).
    public mutating func fillRect(x: Int, y: Int, width: Int, height: Int, color: RGBColor) {
        withCanvas { $0.fill(PixelRect(x: x, y: y, width: width, height: height), color) }
    }

    /// Draws the outline of the `width` x `height` rectangle whose top-left pixel is (x, y): the outline covers
    /// columns x ... x+width-1 and rows y ... y+height-1 and grows inwards with `thickness`.
    public mutating func drawRect(x: Int, y: Int, width: Int, height: Int, color: RGBColor, thickness: Int = 1) {
        guard width > 0, height > 0, thickness > 0 else { return }
        let outer = PixelRect(x: x, y: y, width: width, height: height)
        let t = min(thickness, max(width, height))
        withCanvas { canvas in
            if 2 * t >= outer.width || 2 * t >= outer.height {
                canvas.fill(outer, color)
                return
            }
            canvas.fill(PixelRect(x0: outer.x0, y0: outer.y0, x1: outer.x1, y1: outer.y0 + t), color)  // top
            canvas.fill(PixelRect(x0: outer.x0, y0: outer.y1 - t, x1: outer.x1, y1: outer.y1), color)  // bottom
            canvas.fill(PixelRect(x0: outer.x0, y0: outer.y0 + t, x1: outer.x0 + t, y1: outer.y1 - t), color)  // left
            canvas.fill(PixelRect(x0: outer.x1 - t, y0: outer.y0 + t, x1: outer.x1, y1: outer.y1 - t), color)  // right
        }
    }

    /// Draws a box given by continuous corner coordinates (as detectors output them: x2, y2 is the far edge),
    /// i.e. the pixel rectangle from (round(x1), round(y1)) to (round(x2) - 1, round(y2) - 1).
    /// Non-finite coordinates draw nothing.
    public mutating func drawBox(x1: Double, y1: Double, x2: Double, y2: Double, color: RGBColor, thickness: Int = 2) {
        guard let r = PixelRect(continuousX1: x1, y1: y1, x2: x2, y2: y2) else { return }
        drawRect(x: r.x0, y: r.y0, width: r.width, height: r.height, color: color, thickness: thickness)
    }

    /// Draws a straight line between pixel centres (x0, y0) and (x1, y1), both ends included, `thickness` pixels
    /// wide (thick lines have round ends).
    public mutating func drawLine(x0: Int, y0: Int, x1: Int, y1: Int, color: RGBColor, thickness: Int = 1) {
        drawLine(x0: Double(x0), y0: Double(y0), x1: Double(x1), y1: Double(y1), color: color, thickness: thickness)
    }

    /// Draws a straight line between two points given in (sub-)pixel coordinates, rounded to pixel centres.
    /// Non-finite coordinates draw nothing.
    public mutating func drawLine(x0: Double, y0: Double, x1: Double, y1: Double, color: RGBColor, thickness: Int = 1) {
        withCanvas { $0.line(x0, y0, x1, y1, color, thickness: thickness) }
    }

    /// Fills a disc `diameter` pixels across centred on pixel (x, y).
    public mutating func fillDisc(x: Int, y: Int, diameter: Int, color: RGBColor) {
        guard diameter > 0 else { return }
        withCanvas { $0.disc(x, y, diameter: diameter, color) }
    }
}

extension PixelRect {
    /// The pixel rectangle covered by a box with continuous corners, or nil for non-finite input.
    /// Coordinates are clamped to +-2^30 before rounding, so absurd values cannot overflow.
    init?(continuousX1 x1: Double, y1: Double, x2: Double, y2: Double) {
        guard x1.isFinite, y1.isFinite, x2.isFinite, y2.isFinite else { return nil }
        func pixel(_ v: Double) -> Int { Int(min(max(v, -1_073_741_824), 1_073_741_824).rounded()) }
        self.init(x0: pixel(min(x1, x2)), y0: pixel(min(y1, y2)), x1: pixel(max(x1, x2)), y1: pixel(max(y1, y2)))
    }
}

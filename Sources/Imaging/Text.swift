/// Text and labels drawn with `BitmapFont` (6x10 cells, integer `scale`). Everything is clipped at the image
/// borders.
extension RGBImage {
    /// Draws `text` with its first character cell's top-left corner at (x, y). "\n" starts a new line;
    /// characters outside printable ASCII are drawn as "?". The ink stays inside
    /// `(x, y, BitmapFont.textSize(text, scale:))`.
    public mutating func drawText(_ text: String, x: Int, y: Int, color: RGBColor, scale: Int = 1) {
        withCanvas { $0.text(text, x: x, y: y, color: color, scale: scale) }
    }

    /// Draws `text` rotated 90 degrees counter-clockwise (reading bottom to top, as on a y-axis label).
    /// (x, y) is the top-left of the rotated box, which is `textSize.height` wide and `textSize.width` tall.
    public mutating func drawTextVertical(_ text: String, x: Int, y: Int, color: RGBColor, scale: Int = 1) {
        withCanvas { $0.text(text, x: x, y: y, color: color, scale: scale, vertical: true) }
    }

    /// The rectangle `drawLabel` fills for `text`: text size plus `padding` on every side (times `scale`).
    public static func labelSize(_ text: String, scale: Int = 1, padding: Int = 2) -> (width: Int, height: Int) {
        let s = BitmapFont.clampedScale(scale)
        let size = BitmapFont.textSize(text, scale: s)
        let pad = max(padding, 0) * s
        // The top row of every cell is blank, so one row less padding above keeps the text visually centred.
        return (size.width + 2 * pad, size.height + 2 * pad - s)
    }

    /// Draws a tag: a filled `background` rectangle with `text` in `foreground` inside it, top-left corner at
    /// `at`. Returns the tag's rectangle (before clipping).
    @discardableResult
    public mutating func drawLabel(
        _ text: String, at origin: (x: Int, y: Int), background: RGBColor,
        foreground: RGBColor, scale: Int = 1, padding: Int = 2
    ) -> PixelRect {
        let s = BitmapFont.clampedScale(scale)
        let size = RGBImage.labelSize(text, scale: s, padding: padding)
        let pad = max(padding, 0) * s
        let rect = PixelRect(x: origin.x, y: origin.y, width: size.width, height: size.height)
        withCanvas { canvas in
            canvas.fill(rect, background)
            canvas.text(text, x: origin.x.clampedAdd(pad), y: origin.y.clampedAdd(pad - s), color: foreground, scale: s)
        }
        return rect
    }

    /// Draws a detection: the box outline in `color` and, if `label` is not empty, a tag in the same colour
    /// (with black or white text, whichever reads better) above the box's top-left corner, or just inside the
    /// box when there is no room above (see `TagLayout`). The tag is shifted left if needed to stay inside the
    /// image. Box coordinates are continuous (x2, y2 is the far edge), as in `drawBox`. To draw several boxes
    /// whose tags must not hide each other, use `drawLabeledBoxes`.
    public mutating func drawLabeledBox(
        x1: Double, y1: Double, x2: Double, y2: Double, label: String,
        color: RGBColor, thickness: Int = 2, scale: Int = 1
    ) {
        drawLabeledBoxes(
            [LabeledBox(x1: x1, y1: y1, x2: x2, y2: y2, label: label, color: color)],
            thickness: thickness, scale: scale)
    }
}

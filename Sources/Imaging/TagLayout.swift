/// Where the tags of labelled boxes go, so that no tag hides another and every tag stays inside the image.
///
/// Boxes are placed in the order given (put the most important first: it gets the best spot). Each tag tries,
/// in turn: above the box's top-left corner (outside the box), just inside its top-left corner, below its
/// bottom-left corner, and the same three right-aligned with the box; each shifted sideways to stay inside the
/// image. When all six hit an earlier tag or the image border, the tag goes to the free spot nearest to the
/// first choice. Only when the image has no free spot of the tag's size left (far more tags than room) does a
/// tag overlap another, at its first choice.
public enum TagLayout {
    /// The tag rectangle of each box (same order as `boxes`), for tags of `sizes[i]` on a
    /// `imageWidth` x `imageHeight` image.
    public static func place(
        boxes: [PixelRect], sizes: [(width: Int, height: Int)],
        imageWidth: Int, imageHeight: Int
    ) -> [PixelRect] {
        precondition(boxes.count == sizes.count, "one tag size per box")
        var placed: [PixelRect] = []
        placed.reserveCapacity(boxes.count)
        for (box, size) in zip(boxes, sizes) {
            placed.append(
                placeOne(
                    box: box, size: size, imageWidth: imageWidth, imageHeight: imageHeight,
                    avoiding: placed))
        }
        return placed
    }

    static func placeOne(
        box: PixelRect, size: (width: Int, height: Int), imageWidth: Int, imageHeight: Int,
        avoiding placed: [PixelRect]
    ) -> PixelRect {
        let w = max(size.width, 0), h = max(size.height, 0)
        let maxX = imageWidth - w, maxY = imageHeight - h
        func clampX(_ x: Int) -> Int { max(min(x, maxX), 0) }
        func rect(_ x: Int, _ y: Int) -> PixelRect { PixelRect(x: x, y: y, width: w, height: h) }
        func free(_ r: PixelRect) -> Bool {
            r.x0 >= 0 && r.y0 >= 0 && r.x1 <= imageWidth && r.y1 <= imageHeight
                && !placed.contains { !$0.intersection(r).isEmpty }
        }
        let left = box.x0, right = box.x1.clampedAdd(-w)
        let above = box.y0.clampedAdd(-h), inside = max(box.y0, 0), below = box.y1
        let first = rect(clampX(left), above)
        for (x, y) in [(left, above), (left, inside), (left, below), (right, above), (right, inside), (right, below)] {
            let r = rect(clampX(x), y)
            if free(r) { return r }
        }
        // The nearest free spot to the first choice. Along each axis, the nearest position that clears a set of
        // rectangles either is the wanted one or touches an obstacle or the border, so these candidates hold it.
        guard maxX >= 0, maxY >= 0 else { return rect(0, max(min(above, maxY), 0)) }
        let wantX = first.x0, wantY = max(min(above, maxY), 0)
        var xs: Set<Int> = [wantX, 0, maxX], ys: Set<Int> = [wantY, 0, maxY]
        for p in placed {
            xs.insert(p.x1); xs.insert(p.x0 - w)
            ys.insert(p.y1); ys.insert(p.y0 - h)
        }
        var best: PixelRect?
        var bestDistance = Int.max
        for x in xs.sorted() where x >= 0 && x <= maxX {
            let dx = x - wantX
            guard dx * dx < bestDistance else { continue }
            for y in ys.sorted() where y >= 0 && y <= maxY {
                let dy = y - wantY
                let d = dx * dx + dy * dy
                guard d < bestDistance else { continue }
                let r = rect(x, y)
                if free(r) { best = r; bestDistance = d }
            }
        }
        return best ?? rect(wantX, wantY)
    }
}

/// A box to draw with its tag: continuous corners (x2, y2 is the far edge), as detectors output them.
public struct LabeledBox: Sendable {
    public var x1: Double, y1: Double, x2: Double, y2: Double
    public var label: String
    public var color: RGBColor
    public init(x1: Double, y1: Double, x2: Double, y2: Double, label: String, color: RGBColor) {
        self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2
        self.label = label; self.color = color
    }
}

extension RGBImage {
    /// Draws boxes with their tags, the tags laid out by `TagLayout` (the first box gets the best spot) and
    /// drawn after every outline, so no outline crosses a tag. A tag that had to move away from its box is
    /// joined to it by a thin line in the box's colour. Boxes with non-finite coordinates are skipped.
    /// Returns the rectangle of each drawn tag (nil for boxes skipped or with an empty label).
    @discardableResult
    public mutating func drawLabeledBoxes(_ boxes: [LabeledBox], thickness: Int = 2, scale: Int = 1) -> [PixelRect?] {
        let rects = boxes.map { PixelRect(continuousX1: $0.x1, y1: $0.y1, x2: $0.x2, y2: $0.y2) }
        // Outlines: the first box drawn last, so on top.
        for (b, r) in zip(boxes, rects).reversed() {
            guard let r else { continue }
            drawRect(x: r.x0, y: r.y0, width: r.width, height: r.height, color: b.color, thickness: thickness)
        }
        let tagged = boxes.indices.filter { rects[$0] != nil && !boxes[$0].label.isEmpty }
        let tags = TagLayout.place(
            boxes: tagged.map { rects[$0]! },
            sizes: tagged.map { RGBImage.labelSize(boxes[$0].label, scale: scale) },
            imageWidth: width, imageHeight: height)
        var result = [PixelRect?](repeating: nil, count: boxes.count)
        // Leader lines first, so that no line crosses a tag.
        for (i, tag) in zip(tagged, tags) where gap(tag, rects[i]!) > thickness {
            let (a, b) = closestPoints(tag, rects[i]!)
            drawLine(x0: a.x, y0: a.y, x1: b.x, y1: b.y, color: boxes[i].color, thickness: 1)
        }
        for (i, tag) in zip(tagged, tags) {
            let color = boxes[i].color
            drawLabel(
                boxes[i].label, at: (tag.x0, tag.y0), background: color,
                foreground: Palette.textColor(on: color), scale: scale)
            result[i] = tag
        }
        return result
    }
}

/// Chebyshev distance between two pixel rectangles (0 when they touch or overlap).
private func gap(_ a: PixelRect, _ b: PixelRect) -> Int {
    max(max(a.x0 - b.x1, b.x0 - a.x1, 0), max(a.y0 - b.y1, b.y0 - a.y1, 0))
}

/// A pixel of `a` and a pixel of `b` that are closest to each other.
private func closestPoints(_ a: PixelRect, _ b: PixelRect) -> ((x: Int, y: Int), (x: Int, y: Int)) {
    func axis(_ a0: Int, _ a1: Int, _ b0: Int, _ b1: Int) -> (Int, Int) {
        if a1 <= b0 { return (a1 - 1, b0) }
        if b1 <= a0 { return (a0, b1 - 1) }
        let m = (max(a0, b0) + min(a1, b1) - 1) / 2
        return (m, m)
    }
    let (ax, bx) = axis(a.x0, a.x1, b.x0, b.x1), (ay, by) = axis(a.y0, a.y1, b.y0, b.y1)
    return ((ax, ay), (bx, by))
}

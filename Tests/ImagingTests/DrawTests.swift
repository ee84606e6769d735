import Foundation
import Imaging
import XCTest

final class DrawTests: XCTestCase {
    let red: RGBColor = (255, 0, 0)

    /// Coordinates of every pixel that is not `background`.
    func ink(_ image: RGBImage, background: RGBColor = (0, 0, 0)) -> Set<[Int]> {
        var set = Set<[Int]>()
        for y in 0..<image.height { for x in 0..<image.width where !(image[x, y] == background) { set.insert([x, y]) } }
        return set
    }

    func testRectangleOutline() {
        var image = RGBImage(width: 20, height: 15)
        image.drawRect(x: 3, y: 4, width: 6, height: 5, color: red)
        var expected = Set<[Int]>()
        for y in 4...8 { for x in 3...8 where x == 3 || x == 8 || y == 4 || y == 8 { expected.insert([x, y]) } }
        XCTAssertEqual(ink(image), expected)
        XCTAssertEqual(expected.count, 18)
        XCTAssertTrue(image[3, 4] == red)
        XCTAssertTrue(image[8, 8] == red)
        XCTAssertTrue(image[4, 5] == (0, 0, 0))

        var thick = RGBImage(width: 20, height: 15)
        thick.drawRect(x: 2, y: 2, width: 10, height: 8, color: red, thickness: 2)
        var expectedThick = Set<[Int]>()
        for y in 2...9 { for x in 2...11 where x < 4 || x > 9 || y < 4 || y > 7 { expectedThick.insert([x, y]) } }
        XCTAssertEqual(ink(thick), expectedThick)

        var solid = RGBImage(width: 10, height: 10)
        solid.drawRect(x: 1, y: 1, width: 4, height: 4, color: red, thickness: 3)  // thicker than half: filled
        XCTAssertEqual(solid.count(of: red), 16)
    }

    func testClippingAtBorders() {
        var image = RGBImage(width: 20, height: 15)
        image.drawRect(x: -5, y: -5, width: 10, height: 10, color: red)
        var expected = Set<[Int]>()
        for i in 0...4 { expected.insert([4, i]); expected.insert([i, 4]) }
        XCTAssertEqual(ink(image), expected)

        var fill = RGBImage(width: 20, height: 15)
        fill.fillRect(x: 15, y: 10, width: 100, height: 100, color: red)
        XCTAssertEqual(fill.count(of: red), 25)
        XCTAssertTrue(fill[15, 10] == red)
        XCTAssertTrue(fill[14, 10] == (0, 0, 0))

        // Absurd coordinates neither crash nor draw.
        var other = RGBImage(width: 8, height: 8)
        other.drawRect(x: Int.max - 3, y: Int.min, width: Int.max, height: 10, color: red, thickness: 3)
        other.fillRect(x: Int.min, y: Int.min, width: Int.max, height: Int.max, color: red)
        other.drawLine(x0: Int.min / 2, y0: 0, x1: Int.max / 2, y1: 7, color: red, thickness: 500)
        other.drawBox(x1: .nan, y1: 0, x2: 5, y2: 5, color: red)
        other.drawBox(x1: -1e300, y1: -1e300, x2: 1e300, y2: 1e300, color: red)
        var empty = RGBImage(width: 0, height: 0)
        empty.drawRect(x: 0, y: 0, width: 5, height: 5, color: red)
        empty.drawText("hi", x: 0, y: 0, color: red)
        XCTAssertEqual(empty.pixels.count, 0)
    }

    func testBoxFromContinuousCoordinates() {
        var image = RGBImage(width: 20, height: 20)
        image.drawBox(x1: 2.4, y1: 3.6, x2: 10.5, y2: 8.2, color: red, thickness: 1)
        // round: x 2 ... 10 (exclusive 11 -> last 10), y 4 ... 7
        XCTAssertTrue(image[2, 4] == red)
        XCTAssertTrue(image[10, 7] == red)
        XCTAssertTrue(image[11, 7] == (0, 0, 0))
        XCTAssertTrue(image[2, 8] == (0, 0, 0))
        XCTAssertEqual(image.count(of: red), 2 * 9 + 2 * 2)
    }

    func testLines() {
        var h = RGBImage(width: 20, height: 10)
        h.drawLine(x0: 2, y0: 3, x1: 10, y1: 3, color: red)
        XCTAssertEqual(ink(h), Set((2...10).map { [$0, 3] }))

        var d = RGBImage(width: 20, height: 20)
        d.drawLine(x0: 9, y0: 9, x1: 0, y1: 0, color: red)
        XCTAssertEqual(ink(d), Set((0...9).map { [$0, $0] }))

        var steep = RGBImage(width: 20, height: 20)
        steep.drawLine(x0: 1, y0: 0, x1: 4, y1: 15, color: red)
        let points = ink(steep)
        XCTAssertEqual(points.count, 16)  // one pixel per row for a steep line
        XCTAssertEqual(Set(points.map { $0[1] }), Set(0...15))
        XCTAssertTrue(points.contains([1, 0]) && points.contains([4, 15]))

        var thick = RGBImage(width: 20, height: 12)
        thick.drawLine(x0: 5, y0: 2, x1: 5, y1: 8, color: red, thickness: 3)
        var expected = Set<[Int]>()
        for y in 1...9 { for x in 4...6 { expected.insert([x, y]) } }
        XCTAssertEqual(ink(thick), expected)

        var far = RGBImage(width: 20, height: 10)
        far.drawLine(x0: -1e7, y0: 5, x1: 1e7, y1: 5, color: red)  // clipped analytically: fast
        XCTAssertEqual(ink(far), Set((0..<20).map { [$0, 5] }))
        far.drawLine(x0: .nan, y0: 0, x1: 3, y1: 3, color: (0, 255, 0))
        XCTAssertEqual(far.count(of: (0, 255, 0)), 0)

        var disc = RGBImage(width: 20, height: 20)
        disc.fillDisc(x: 10, y: 10, diameter: 5, color: red)
        XCTAssertTrue(disc[10, 10] == red && disc[12, 10] == red && disc[10, 8] == red)
        XCTAssertTrue(disc[12, 12] == (0, 0, 0))  // corners of the 5x5 square are outside the disc
        XCTAssertEqual(disc.count(of: red), 21)
    }

    func testFontTable() {
        var seen = Set<[UInt8]>()
        for v in UInt32(32)...126 {
            let rows = Array(BitmapFont.rows(for: Unicode.Scalar(v)!))
            XCTAssertEqual(rows.count, 10)
            XCTAssertTrue(rows.allSatisfy { $0 < 32 }, "glyph \(v) is wider than 5 columns")
            XCTAssertEqual(rows[0], 0, "row 0 is spacing")
            if v != 32 { XCTAssertTrue(rows.contains { $0 != 0 }, "glyph \(v) has no ink") }
            XCTAssertTrue(seen.insert(rows).inserted, "glyph \(v) duplicates another")
        }
        XCTAssertEqual(Array(BitmapFont.rows(for: "é")), Array(BitmapFont.rows(for: "?")))
        // "I": a bar on rows 1 and 7 and a stem in the middle column.
        XCTAssertEqual(
            Array(BitmapFont.rows(for: "I")), [0, 0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0, 0])
        XCTAssertTrue(BitmapFont.textSize("") == (0, 0))
        XCTAssertTrue(BitmapFont.textSize("ab") == (11, 10))
        XCTAssertTrue(BitmapFont.textSize("ab\nc", scale: 3) == (33, 60))
    }

    func testTextStaysInsideItsBox() {
        for (text, scale) in [("Hello, World! 0.98", 1), ("person 87%", 2), ("gjpqy_|M", 3), ("two\nlines", 1)] {
            var image = RGBImage(width: 400, height: 100, fill: (255, 255, 255))
            image.drawText(text, x: 7, y: 5, color: (0, 0, 0), scale: scale)
            let size = BitmapFont.textSize(text, scale: scale)
            let points = ink(image, background: (255, 255, 255))
            XCTAssertFalse(points.isEmpty, text)
            XCTAssertTrue(
                points.allSatisfy { $0[0] >= 7 && $0[0] < 7 + size.width && $0[1] >= 5 && $0[1] < 5 + size.height },
                text)
            // The ink reaches the right edge of the box (last glyph column) for these texts.
            XCTAssertEqual(points.map { $0[0] }.max(), 7 + size.width - 1, text)
            XCTAssertTrue(Set(image.pixels).isSubset(of: [0, 255]), "text is drawn in the single colour")
        }
        // An "I" at scale 2 is 11 dots of 2x2 pixels.
        var i = RGBImage(width: 20, height: 30)
        i.drawText("I", x: 3, y: 4, color: red, scale: 2)
        XCTAssertEqual(i.count(of: red), 44)
        XCTAssertTrue(i[3 + 2, 4 + 2] == red)  // top bar starts at column 1, row 1 (x2)
        XCTAssertTrue(i[3 + 0, 4 + 2] == (0, 0, 0))

        // Vertical text occupies the rotated box.
        var v = RGBImage(width: 60, height: 120, fill: (255, 255, 255))
        v.drawTextVertical("Loss", x: 10, y: 20, color: (0, 0, 0), scale: 2)
        let size = BitmapFont.textSize("Loss", scale: 2)
        let points = ink(v, background: (255, 255, 255))
        XCTAssertFalse(points.isEmpty)
        XCTAssertTrue(
            points.allSatisfy { $0[0] >= 10 && $0[0] < 10 + size.height && $0[1] >= 20 && $0[1] < 20 + size.width })

        // Clipped text draws the visible part only.
        var clipped = RGBImage(width: 10, height: 10)
        clipped.drawText("WWW", x: -4, y: -3, color: red, scale: 1)
        XCTAssertGreaterThan(clipped.count(of: red), 0)
    }

    func testLabel() {
        var image = RGBImage(width: 120, height: 40, fill: (10, 10, 10))
        let rect = image.drawLabel(
            "cat 0.98", at: (5, 6), background: red, foreground: (255, 255, 255), scale: 1, padding: 2)
        let size = RGBImage.labelSize("cat 0.98", scale: 1, padding: 2)
        XCTAssertEqual(rect, PixelRect(x: 5, y: 6, width: size.width, height: size.height))
        XCTAssertEqual(size.width, BitmapFont.textSize("cat 0.98").width + 4)
        for y in 0..<40 {
            for x in 0..<120 {
                if rect.contains(x: x, y: y) {
                    XCTAssertTrue(image[x, y] == red || image[x, y] == (255, 255, 255), "(\(x), \(y))")
                } else {
                    XCTAssertTrue(image[x, y] == (10, 10, 10), "(\(x), \(y)) outside the tag")
                }
            }
        }
        var textOnly = RGBImage(width: 120, height: 40, fill: red)
        textOnly.drawText("cat 0.98", x: 7, y: 7, color: (255, 255, 255))
        XCTAssertEqual(image.count(of: (255, 255, 255)), textOnly.count(of: (255, 255, 255)))

        // Clipped at the borders.
        var corner = RGBImage(width: 30, height: 12)
        corner.drawLabel("dog", at: (-8, -5), background: red, foreground: (255, 255, 255), scale: 2)
        XCTAssertGreaterThan(corner.count(of: red), 0)
        XCTAssertGreaterThan(corner.count(of: (255, 255, 255)), 0)

        // A labelled box at the top edge puts its tag inside the box; lower down, above it.
        var boxes = RGBImage(width: 200, height: 100)
        boxes.drawLabeledBox(x1: 10, y1: 0, x2: 80, y2: 50, label: "person", color: (0, 200, 0))
        XCTAssertTrue(boxes[12, 3] == (0, 200, 0), "\(boxes[12, 3])")  // tag background just inside the box
        boxes.drawLabeledBox(x1: 100, y1: 40, x2: 190, y2: 90, label: "bicycle", color: (0, 0, 200))
        XCTAssertTrue(boxes[101, 38] == (0, 0, 200))  // tag above the box
        XCTAssertTrue(boxes[101, 41] == (0, 0, 200))  // the 2-pixel outline
        XCTAssertTrue(boxes[102, 42] == (0, 0, 0))  // inside the outline: untouched
    }

    func testPalette() {
        let colors = (0..<100).map { Palette.color($0) }
        XCTAssertEqual(Set(colors.map { [$0.r, $0.g, $0.b] }).count, 100, "100 distinct class colours")
        XCTAssertTrue(Palette.color(0) == (31, 119, 180))
        XCTAssertTrue(Palette.color(-3) == Palette.color(3))
        XCTAssertTrue(Palette.textColor(on: (255, 255, 0)) == Palette.black)
        XCTAssertTrue(Palette.textColor(on: (0, 0, 128)) == Palette.white)
        XCTAssertTrue(Palette.hsv(hue: 0, saturation: 1, value: 1) == (255, 0, 0))
        XCTAssertTrue(Palette.hsv(hue: 2.0 / 3, saturation: 1, value: 1) == (0, 0, 255))
    }

    func testGrid() {
        let a = RGBImage(width: 4, height: 2, fill: red), b = RGBImage(width: 2, height: 4, fill: (0, 0, 255))
        let sheet = gridOfImages([a, b, a], columns: 2, spacing: 1, background: (255, 255, 255))
        XCTAssertEqual(sheet.width, 2 * 4 + 3)
        XCTAssertEqual(sheet.height, 2 * 4 + 3)
        XCTAssertEqual(sheet.count(of: red), 16)
        XCTAssertEqual(sheet.count(of: (0, 0, 255)), 8)
        XCTAssertTrue(sheet[1, 2] == red)  // first cell, centred vertically
        XCTAssertEqual(gridOfImages([], columns: 3).width, 1)
    }

    /// 30 overlapping boxes on a small image: no two tags intersect, every tag lies inside the image, and each
    /// box, however small, has its full-size tag.
    func testThirtyOverlappingTagsNeitherOverlapNorLeaveTheImage() {
        var state: UInt64 = 12345
        func random(_ n: Int) -> Int {  // deterministic LCG
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        let names = ["circle", "rectangle", "triangle", "star", "cross", "ring", "arrow", "heart"]
        for trial in 0..<5 {
            let width = 240 + 20 * trial, height = 200
            var image = RGBImage(width: width, height: height, fill: (40, 40, 40))
            let boxes = (0..<30).map { i -> LabeledBox in
                let x = Double(90 + random(60)), y = Double(70 + random(60))
                let size = i % 5 == 0 ? 2.0 : Double(4 + random(50))  // some boxes far smaller than a tag
                return LabeledBox(
                    x1: x, y1: y, x2: x + size, y2: y + size * 0.8,
                    label: "\(names[i % names.count]) 0.\(10 + random(89))", color: Palette.color(i))
            }
            let tags = image.drawLabeledBoxes(boxes)
            XCTAssertEqual(tags.compactMap { $0 }.count, 30)
            let rects = tags.compactMap { $0 }
            for (i, r) in rects.enumerated() {
                let size = RGBImage.labelSize(boxes[i].label)
                XCTAssertEqual(r.width, size.width)
                XCTAssertEqual(r.height, size.height)
                XCTAssert(
                    r.x0 >= 0 && r.y0 >= 0 && r.x1 <= width && r.y1 <= height,
                    "trial \(trial) tag \(i) \(r) leaves the image")
                for j in 0..<i {
                    XCTAssert(
                        r.intersection(rects[j]).isEmpty, "trial \(trial): tags \(j) \(rects[j]) and \(i) \(r) overlap")
                }
                // The tag is really drawn: its background colour fills its corner pixels.
                XCTAssertTrue(image[r.x0, r.y0] == boxes[i].color, "trial \(trial) tag \(i)")
            }
        }
    }

    /// Tag positions in order of preference: above the box, else inside its top, else below; sideways shifted
    /// into the image; the nearest free spot when those are taken.
    func testTagPlacementPreferences() {
        let size = (width: 30, height: 10)
        func place(_ box: PixelRect) -> PixelRect {
            TagLayout.place(boxes: [box], sizes: [size], imageWidth: 100, imageHeight: 100)[0]
        }
        XCTAssertEqual(
            place(PixelRect(x: 20, y: 40, width: 20, height: 20)), PixelRect(x: 20, y: 30, width: 30, height: 10))
        XCTAssertEqual(
            place(PixelRect(x: 20, y: 5, width: 20, height: 20)), PixelRect(x: 20, y: 5, width: 30, height: 10))
        XCTAssertEqual(
            place(PixelRect(x: 90, y: 40, width: 10, height: 10)), PixelRect(x: 70, y: 30, width: 30, height: 10))
        // The spot above taken: inside.
        XCTAssertEqual(
            TagLayout.place(
                boxes: [PixelRect(x: 0, y: 40, width: 1, height: 1), PixelRect(x: 20, y: 40, width: 20, height: 20)],
                sizes: [(100, 10), size], imageWidth: 100, imageHeight: 100),
            [PixelRect(x: 0, y: 30, width: 100, height: 10), PixelRect(x: 20, y: 40, width: 30, height: 10)])
        // Above, inside and below (left- and right-aligned) all blocked by a band: the free spot nearest to above.
        let blocked = TagLayout.place(
            boxes: [PixelRect(x: 0, y: 62, width: 1, height: 1), PixelRect(x: 20, y: 40, width: 20, height: 12)],
            sizes: [(100, 32), size], imageWidth: 100, imageHeight: 100)
        XCTAssertEqual(
            blocked, [PixelRect(x: 0, y: 30, width: 100, height: 32), PixelRect(x: 20, y: 20, width: 30, height: 10)])
    }
}

import Foundation
import Imaging
import XCTest

final class ChartTests: XCTestCase {
    func prCurve(_ n: Int, sharpness: Double) -> (xs: [Double], ys: [Double]) {
        let xs = (0...n).map { Double($0) / Double(n) }
        return (xs, xs.map { 1 - pow($0, sharpness) * 0.9 })
    }

    func testChartHasRequestedSizeAndSeriesColours() {
        let a = prCurve(50, sharpness: 4), b = prCurve(50, sharpness: 1.5)
        let chart = LineChart(
            title: "Precision-recall", xLabel: "recall", yLabel: "precision",
            series: [
                LineSeries(name: "cat AP=0.91", xs: a.xs, ys: a.ys, color: (255, 0, 0)),
                LineSeries(name: "dog AP=0.74", xs: b.xs, ys: b.ys, color: (0, 0, 255), lineWidth: 3)
            ],
            xRange: 0...1, yRange: 0...1)
        let image = chart.render(width: 640, height: 480)
        XCTAssertEqual(image.width, 640)
        XCTAssertEqual(image.height, 480)
        XCTAssertGreaterThan(image.count(of: (255, 0, 0)), 300)
        XCTAssertGreaterThan(image.count(of: (0, 0, 255)), 400)
        XCTAssertTrue(image[0, 0] == (255, 255, 255))
        XCTAssertTrue(image[639, 479] == (255, 255, 255))
        // The red curve falls from left to right: its rightmost pixels are lower than its leftmost.
        var reds = [(Int, Int)]()
        for y in 0..<480 { for x in 0..<640 where image[x, y] == (255, 0, 0) { reds.append((x, y)) } }
        let minX = reds.map(\.0).min()!, maxX = reds.map(\.0).max()!
        let leftY = reds.filter { $0.0 == minX }.map(\.1).min()!
        let rightY = reds.filter { $0.0 == maxX }.map(\.1).max()!
        XCTAssertGreaterThan(rightY - leftY, 200)
        XCTAssertGreaterThan(maxX - minX, 400)
        // Dark text (title, ticks, labels) is present.
        XCTAssertGreaterThan(image.count(of: (20, 20, 20)), 500)
    }

    func testDefaultColoursAndAwkwardData() {
        let ys = (0..<200).map { i -> Double in i == 50 ? .nan : 2.5 * exp(-Double(i) / 40) + 0.05 }
        var chart = LineChart(
            title: "loss", xLabel: "iteration", yLabel: "loss",
            series: [LineSeries(name: "train", ys: ys), LineSeries(name: "", xs: [0, 1], ys: [1])])
        let linear = chart.render()
        XCTAssertEqual(linear.width, 800)
        XCTAssertEqual(linear.height, 600)
        XCTAssertGreaterThan(linear.count(of: Palette.color(0)), 300)
        chart.logY = true
        chart.series.append(LineSeries(name: "zeros", xs: [0, 1, 2], ys: [0, -1, .infinity]))
        let log = chart.render(width: 500, height: 300)
        XCTAssertEqual(log.width, 500)
        XCTAssertGreaterThan(log.count(of: Palette.color(0)), 200)

        // Degenerate inputs render without crashing.
        for c in [
            LineChart(), LineChart(series: [LineSeries(name: "one", xs: [3], ys: [3])]),
            LineChart(series: [LineSeries(name: "flat", xs: [1, 2, 3], ys: [5, 5, 5])], xRange: 2...2),
            LineChart(series: [LineSeries(name: "huge", xs: [0, 1], ys: [-1e300, 1e300])], yRange: 0...1),
            LineChart(series: [LineSeries(name: "tiny", xs: [0, 1e-12], ys: [1e-9, 2e-9])], logY: true)
        ] {
            for (w, h) in [(800, 600), (120, 90), (1, 1), (0, -5)] {
                let image = c.render(width: w, height: h)
                XCTAssertEqual(image.width, max(w, 1))
                XCTAssertEqual(image.height, max(h, 1))
            }
        }
        let single = LineChart(series: [LineSeries(name: "one", xs: [3], ys: [3], color: (0, 128, 0))]).render()
        XCTAssertGreaterThan(single.count(of: (0, 128, 0)), 10, "a lone point is drawn as a dot")
    }

    /// The sample pictures (PR chart, loss chart, labelled photo, font sheet): each written as PNG reads back
    /// pixel for pixel, and each shows what it should. They go to IMAGING_SAMPLES_DIR when it is set (for a
    /// visual check), else to a scratch folder.
    func testSamplePictures() throws {
        let dir: URL
        if let path = ProcessInfo.processInfo.environment["IMAGING_SAMPLES_DIR"] {
            dir = URL(fileURLWithPath: path)
        } else {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("chart-samples-\(UUID().uuidString)")
            addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func roundTrip(_ image: RGBImage, _ name: String) throws {
            let url = dir.appendingPathComponent(name)
            try ImageIO.writePNG(image, to: url)
            XCTAssertEqual(try ImageIO.read(url), image, name)
        }
        let curves = [(4.0, "aeroplane"), (1.5, "bicycle"), (0.7, "bird"), (2.5, "boat")].map { s, name -> LineSeries in
            let c = prCurve(100, sharpness: s)
            return LineSeries(name: "\(name) AP=\(String(format: "%.3f", 1 - 0.9 / (s + 1)))", xs: c.xs, ys: c.ys)
        }
        let pr = LineChart(
            title: "Precision-recall (VOC 2007 test)", xLabel: "recall", yLabel: "precision",
            series: curves, xRange: 0...1, yRange: 0...1.02
        ).render()
        for k in 0..<4 { XCTAssertGreaterThan(pr.count(of: Palette.color(k)), 200, "curve \(k) drawn in its colour") }
        try roundTrip(pr, "chart_pr.png")
        var rng = SeededRandom(seed: 1)
        let loss = (0..<3000).map { i in 3 * exp(-Double(i) / 500) + 0.2 + Double.random(in: 0...0.15, using: &rng) }
        let lossChart = LineChart(
            title: "Training loss", xLabel: "iteration", yLabel: "loss",
            series: [
                LineSeries(name: "total", ys: loss, lineWidth: 1),
                LineSeries(name: "rpn", ys: loss.map { $0 * 0.3 }, lineWidth: 1)
            ],
            logY: true
        ).render(width: 900, height: 500)
        XCTAssertEqual([lossChart.width, lossChart.height], [900, 500])
        XCTAssertGreaterThan(lossChart.count(of: Palette.color(1)), 300)
        try roundTrip(lossChart, "chart_loss.png")
        var photo = smoothImage(width: 480, height: 320)
        let tags = photo.drawLabeledBoxes([
            LabeledBox(x1: 30.3, y1: 0, x2: 200.7, y2: 180, label: "person 0.98", color: Palette.color(0)),
            LabeledBox(x1: 220, y1: 120, x2: 470, y2: 310, label: "bicycle 0.87", color: Palette.color(1)),
            LabeledBox(x1: 400, y1: 30, x2: 479, y2: 100, label: "dog 0.55", color: Palette.color(2))
        ]).map { $0! }
        XCTAssertEqual(tags[0].y0, 0, "no room above the person: the tag goes inside the box")
        XCTAssertEqual(tags[1].y1, 120, "the bicycle's tag sits right above it")
        XCTAssertEqual([tags[2].x0, tags[2].y1], [400, 30], "the dog's tag: above its top-left corner")
        photo.drawText(
            " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
            x: 4, y: 250, color: (255, 255, 255))
        photo.drawText("The quick brown fox jumps over the lazy dog.", x: 4, y: 266, color: (0, 0, 0), scale: 2)
        try roundTrip(photo, "labels.png")
        try roundTrip(try photo.resizedBilinear(width: 960, height: 640), "labels_2x.png")
        var sheet = RGBImage(width: 32 * 6 * 4 + 16, height: 3 * 10 * 4 + 16, fill: Palette.white)
        for row in 0..<3 {
            let text = String((0..<32).compactMap { Unicode.Scalar(UInt32(32 + row * 32 + $0)) }.map(Character.init))
            sheet.drawText(text, x: 8, y: 8 + row * 40, color: Palette.black, scale: 4)
        }
        XCTAssertGreaterThan(sheet.count(of: Palette.black), 95 * 16 * 4, "every printable character leaves ink")
        try roundTrip(sheet, "font.png")
    }
}

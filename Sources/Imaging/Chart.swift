import Foundation

/// One polyline of a `LineChart`.
public struct LineSeries {
    /// Legend text; series with an empty name are left out of the legend.
    public var name: String
    /// X coordinates. Only the first `min(xs.count, ys.count)` points are used.
    public var xs: [Double]
    /// Y coordinates. A non-finite point (or a non-positive y on a log axis) breaks the line there.
    public var ys: [Double]
    /// Line colour; nil picks `Palette.color(index)` by the series' position in the chart.
    public var color: (UInt8, UInt8, UInt8)?
    /// Line width in pixels (clamped to 1 ... 20).
    public var lineWidth: Int

    public init(name: String, xs: [Double], ys: [Double], color: (UInt8, UInt8, UInt8)? = nil, lineWidth: Int = 2) {
        self.name = name
        self.xs = xs
        self.ys = ys
        self.color = color
        self.lineWidth = lineWidth
    }

    /// A series over x = 0, 1, 2, ... (e.g. a loss per iteration).
    public init(name: String, ys: [Double], color: (UInt8, UInt8, UInt8)? = nil, lineWidth: Int = 2) {
        self.init(name: name, xs: ys.indices.map(Double.init), ys: ys, color: color, lineWidth: lineWidth)
    }
}

/// A line chart rendered to an image: white background, framed plot area with grid lines, numeric tick labels,
/// title, axis labels and a legend placed in the corner of the plot that covers the fewest data points.
/// Used for precision-recall curves, training curves and loss curves.
///
/// Axis ranges default to the data extent widened to round tick values; give `xRange` / `yRange` to fix them
/// (e.g. 0...1 for precision and recall). `logY` plots y on a base-10 log scale (non-positive values are
/// skipped). Text size grows with the image: the font scale is `max(1, min(width, height) / 500)`.
public struct LineChart {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [LineSeries]
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?
    public var logY: Bool

    public init(
        title: String = "", xLabel: String = "", yLabel: String = "", series: [LineSeries] = [],
        xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil, logY: Bool = false
    ) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.xRange = xRange
        self.yRange = yRange
        self.logY = logY
    }

    /// Colours used for the chart furniture.
    static let gridColor: RGBColor = (225, 225, 225)
    static let minorGridColor: RGBColor = (242, 242, 242)
    static let frameColor: RGBColor = (70, 70, 70)
    static let textColor: RGBColor = (20, 20, 20)

    /// Draws the chart into a new `width` x `height` image (sizes below 1 are raised to 1; below about
    /// 200 x 150 the plot area may be empty, but rendering never fails).
    public func render(width: Int = 800, height: Int = 600) -> RGBImage {
        let w = min(max(width, 1), 16384), h = min(max(height, 1), 16384)
        var image = RGBImage(width: w, height: h, fill: Palette.white)
        let s = max(1, min(w, h) / 500)  // font scale
        let cellH = BitmapFont.cellHeight * s
        let pad = 10 * s, tickLength = 5 * s, gap = 4 * s

        // Vertical layout.
        let titleHeight = title.isEmpty ? 0 : 2 * cellH + 6 * s
        let xLabelHeight = xLabel.isEmpty ? 0 : cellH + 4 * s
        let top = pad + titleHeight
        let bottom = h - pad - xLabelHeight - cellH - tickLength - gap
        let plotHeight = bottom - top

        // Axes (y first: its label width decides the left margin).
        let points = usablePoints()
        let usable = points.flatMap { $0.filter { !$0.breaksLine } }
        let xs = usable.map(\.x), ys = usable.map(\.y)
        let yAxis =
            logY
            ? Axis.logarithmic(dataMin: ys.filter { $0 > 0 }.min(), dataMax: ys.max(), range: yRange)
            : Axis.linear(
                dataMin: ys.min(), dataMax: ys.max(), range: yRange, targetTicks: max(2, plotHeight / (55 * s)))
        let yTickLabelWidth = yAxis.ticks.map { BitmapFont.textSize($0.label, scale: s).width }.max() ?? 0
        let yLabelWidth = yLabel.isEmpty ? 0 : cellH + 6 * s
        let left = pad + yLabelWidth + yTickLabelWidth + tickLength + gap
        let right = w - pad - 2 * BitmapFont.cellWidth * s
        let plotWidth = right - left
        var xTarget = max(2, plotWidth / (90 * s))
        var xAxis = Axis.linear(dataMin: xs.min(), dataMax: xs.max(), range: xRange, targetTicks: xTarget)
        while xTarget > 2 {  // fewer ticks until the labels do not collide
            let widest = xAxis.ticks.map { BitmapFont.textSize($0.label, scale: s).width }.max() ?? 0
            if xAxis.ticks.count < 2
                || Double(widest + 3 * BitmapFont.cellWidth * s) < Double(plotWidth) / Double(xAxis.ticks.count - 1)
            {
                break
            }
            xTarget -= 1
            xAxis = Axis.linear(dataMin: xs.min(), dataMax: xs.max(), range: xRange, targetTicks: xTarget)
        }
        guard plotWidth > 4, plotHeight > 4 else { return image }

        let plot = PixelRect(x0: left, y0: top, x1: right, y1: bottom)
        func px(_ x: Double) -> Double { Double(left) + xAxis.fraction(x) * Double(plotWidth - 1) }
        func py(_ y: Double) -> Double { Double(bottom - 1) - yAxis.fraction(y) * Double(plotHeight - 1) }
        func pixel(_ v: Double) -> Int { Int(min(max(v, -1e9), 1e9).rounded()) }

        // Grid.
        for v in yAxis.minorTicks {
            image.fillRect(x: left, y: pixel(py(v)), width: plotWidth, height: 1, color: Self.minorGridColor)
        }
        for t in xAxis.ticks {
            image.fillRect(x: pixel(px(t.value)), y: top, width: 1, height: plotHeight, color: Self.gridColor)
        }
        for t in yAxis.ticks {
            image.fillRect(x: left, y: pixel(py(t.value)), width: plotWidth, height: 1, color: Self.gridColor)
        }

        // Data (pixelRuns keeps every unbroken polyline in pixel coordinates, for placing the legend).
        var pixelRuns = [[(x: Double, y: Double)]]()
        for (index, runs) in points.enumerated() {
            let item = series[index]
            let color: RGBColor = item.color.map { ($0.0, $0.1, $0.2) } ?? Palette.color(index)
            let thickness = min(max(item.lineWidth, 1), 20)
            for run in runs.split(whereSeparator: { $0.breaksLine }) {
                let run = run.map { (x: px($0.x), y: py($0.y)) }
                image.withCanvas(clip: plot) { canvas in
                    if run.count == 1 {
                        canvas.disc(pixel(run[0].x), pixel(run[0].y), diameter: thickness + 3, color)
                    }
                    for (a, b) in zip(run, run.dropFirst()) {
                        canvas.line(a.x, a.y, b.x, b.y, color, thickness: thickness)
                    }
                }
                pixelRuns.append(run)
            }
        }

        // Frame, ticks and tick labels.
        image.drawRect(x: left - 1, y: top - 1, width: plotWidth + 2, height: plotHeight + 2, color: Self.frameColor)
        for t in xAxis.ticks {
            let x = pixel(px(t.value))
            image.fillRect(x: x, y: bottom + 1, width: max(1, s), height: tickLength, color: Self.frameColor)
            let size = BitmapFont.textSize(t.label, scale: s)
            image.drawText(
                t.label, x: x - size.width / 2, y: bottom + 1 + tickLength + gap / 2, color: Self.textColor, scale: s)
        }
        for t in yAxis.ticks {
            let y = pixel(py(t.value))
            image.fillRect(x: left - 1 - tickLength, y: y, width: tickLength, height: max(1, s), color: Self.frameColor)
            let size = BitmapFont.textSize(t.label, scale: s)
            // digits occupy rows 1...7 of the cell: centre row 4 on the tick
            image.drawText(
                t.label, x: left - 1 - tickLength - gap - size.width, y: y - 4 * s, color: Self.textColor, scale: s)
        }

        // Title and axis labels.
        if !title.isEmpty {
            let size = BitmapFont.textSize(title, scale: 2 * s)
            let x = min(max(left + (plotWidth - size.width) / 2, pad), max(pad, w - pad - size.width))
            image.drawText(title, x: x, y: pad, color: Self.textColor, scale: 2 * s)
        }
        if !xLabel.isEmpty {
            let size = BitmapFont.textSize(xLabel, scale: s)
            image.drawText(
                xLabel, x: left + (plotWidth - size.width) / 2, y: h - pad - cellH, color: Self.textColor, scale: s)
        }
        if !yLabel.isEmpty {
            let size = BitmapFont.textSize(yLabel, scale: s)
            image.drawTextVertical(
                yLabel, x: pad, y: top + (plotHeight - size.width) / 2, color: Self.textColor, scale: s)
        }
        if points.allSatisfy({ $0.allSatisfy(\.breaksLine) }) {
            let message = "no data"
            let size = BitmapFont.textSize(message, scale: s)
            image.drawText(
                message, x: left + (plotWidth - size.width) / 2, y: top + (plotHeight - size.height) / 2,
                color: Palette.gray, scale: s)
        }

        drawLegend(into: &image, plot: plot, scale: s, pixelRuns: pixelRuns)
        return image
    }

    /// A data point, or a break in the line.
    struct Point {
        var x: Double
        var y: Double
        var breaksLine: Bool
    }

    /// Each series' points in order, with unusable ones (non-finite, non-positive on a log axis) marked as breaks.
    func usablePoints() -> [[Point]] {
        series.map { item in
            (0..<min(item.xs.count, item.ys.count)).map { i in
                let x = item.xs[i], y = item.ys[i]
                let usable = x.isFinite && y.isFinite && (!logY || y > 0)
                return usable ? Point(x: x, y: y, breaksLine: false) : Point(x: 0, y: 0, breaksLine: true)
            }
        }
    }

    private func drawLegend(
        into image: inout RGBImage, plot: PixelRect, scale s: Int, pixelRuns: [[(x: Double, y: Double)]]
    ) {
        let entries = series.enumerated().filter { !$0.element.name.isEmpty }
        guard !entries.isEmpty else { return }
        let rowHeight = BitmapFont.cellHeight * s + 4 * s
        let sampleLength = 24 * s, inner = 6 * s, inset = 8 * s
        let nameWidth = entries.map { BitmapFont.textSize($0.element.name, scale: s).width }.max() ?? 0
        let boxWidth = inner + sampleLength + inner + nameWidth + inner
        let boxHeight = inner + entries.count * rowHeight - 4 * s + inner - s

        // Candidate corners, best first on ties: top-right, top-left, bottom-left, bottom-right.
        let candidates = [
            (plot.x1 - inset - boxWidth, plot.y0 + inset), (plot.x0 + inset, plot.y0 + inset),
            (plot.x0 + inset, plot.y1 - inset - boxHeight), (plot.x1 - inset - boxWidth, plot.y1 - inset - boxHeight)
        ]
        func covered(_ corner: (Int, Int)) -> Int {
            let x0 = Double(corner.0 - 4), y0 = Double(corner.1 - 4)
            let x1 = x0 + Double(boxWidth + 8), y1 = y0 + Double(boxHeight + 8)
            func inside(_ x: Double, _ y: Double) -> Bool { x >= x0 && x < x1 && y >= y0 && y < y1 }
            var count = 0
            for points in pixelRuns {
                for (a, b) in zip(points, points.dropFirst()) {  // sample each segment every ~4 pixels
                    let span = max(abs(b.x - a.x), abs(b.y - a.y))
                    guard span.isFinite else { continue }
                    let steps = Int(min(span / 4, 1000)) + 1
                    for k in 0...steps {
                        let t = Double(k) / Double(steps)
                        if inside(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t) { count += 1 }
                    }
                }
                if points.count == 1, inside(points[0].x, points[0].y) { count += 1 }
            }
            return count
        }
        var best = candidates[0], bestCount = Int.max
        for corner in candidates {
            let c = covered(corner)
            if c < bestCount { (best, bestCount) = (corner, c) }
        }

        image.fillRect(x: best.0, y: best.1, width: boxWidth, height: boxHeight, color: Palette.white)
        image.drawRect(x: best.0, y: best.1, width: boxWidth, height: boxHeight, color: (160, 160, 160))
        for (row, entry) in entries.enumerated() {
            let item = entry.element
            let color: RGBColor = item.color.map { ($0.0, $0.1, $0.2) } ?? Palette.color(entry.offset)
            let textY = best.1 + inner - s + row * rowHeight
            let lineY = textY + 4 * s + s / 2
            let x0 = best.0 + inner
            image.drawLine(
                x0: x0, y0: lineY, x1: x0 + sampleLength, y1: lineY, color: color,
                thickness: min(max(item.lineWidth, 1), 8))
            image.drawText(item.name, x: x0 + sampleLength + inner, y: textY, color: Self.textColor, scale: s)
        }
    }
}

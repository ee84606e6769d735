import Foundation
import Imaging

/// One precision-recall chart and the file name it is written under.
public struct PRPlot {
    public var fileName: String
    public var chart: LineChart
}

/// Precision-recall charts for a result: one per class that has ground truth (`pr_<class>.png`) and a
/// summary (`summary.png`).
///
/// - COCO: per category, precision at the 101 recall points (all areas, 100 detections) at IoU 0.50, 0.75 and
///   averaged over 0.50:0.95, the curves AP50, AP75 and AP average; the summary averages them over categories.
/// - VOC: per class, the monotone precision envelope (what the area AP integrates) at each requested IoU
///   threshold, with the raw curve of the first one; the summary overlays every class's envelope (thin) and
///   their mean over 101 recall points (thick).
public func prPlots(_ result: EvaluationResult) -> [PRPlot] {
    var plots: [PRPlot] = []
    var used = Set<String>()
    func fileName(_ name: String) -> String {
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }).prefix(80)
        var candidate = "pr_\(safe).png", n = 2
        while used.contains(candidate) { candidate = "pr_\(safe)_\(n).png"; n += 1 }
        used.insert(candidate)
        return candidate
    }
    switch result {
    case .coco(let e):
        let recall = e.parameters.recallThresholds
        let t50 = e.parameters.iouThresholds.firstIndex(of: 0.5)
        let t75 = e.parameters.iouThresholds.firstIndex(of: 0.75)
        var sums = [[Double]](repeating: [Double](repeating: 0, count: recall.count), count: 3)
        var counted = 0
        for k in e.categories.indices where e.averagePrecision(category: k) > -1 {
            let curves = cocoCurves(e, category: k, t50: t50, t75: t75)
            for c in 0..<3 { for r in recall.indices { sums[c][r] += curves[c][r] } }
            counted += 1
            let s = e.summary(category: k)
            plots.append(
                PRPlot(
                    fileName: fileName(e.categories[k].name),
                    chart: cocoChart(
                        title:
                            "\(e.categories[k].name): AP \(fraction(s.ap, 3)), AP50 \(fraction(s.ap50, 3)), AP75 "
                            + "\(fraction(s.ap75, 3))",
                        recall: recall, curves: curves)))
        }
        let mean = sums.map { $0.map { counted > 0 ? $0 / Double(counted) : 0 } }
        let s = e.summary
        plots.append(
            PRPlot(
                fileName: "summary.png",
                chart: cocoChart(
                    title:
                        "\(counted) categories: AP \(fraction(s.ap, 3)), AP50 \(fraction(s.ap50, 3)), AP75 "
                        + "\(fraction(s.ap75, 3))",
                    recall: recall, curves: mean)))
    case .voc(let list):
        let main = list[0]
        let grid = linspace(0, 1, count: 101)
        var summarySeries: [LineSeries] = []
        var meanCurve = [Double](repeating: 0, count: grid.count)
        var counted = 0
        for k in main.classes.indices where main.classes[k].ap > -1 {
            let c = main.classes[k]
            var series = [
                LineSeries(
                    name: "raw, IoU>\(threshold(main.iouThreshold))", xs: c.recall, ys: c.precision,
                    color: (170, 170, 170), lineWidth: 1)
            ]
            for (n, e) in list.enumerated() {
                let r = e.classes[k]
                series.append(
                    LineSeries(
                        name: "IoU>\(threshold(e.iouThreshold)): AP \(fraction(r.ap, 4))",
                        xs: r.recall, ys: envelope(r.precision), color: Palette.color(n), lineWidth: 2))
            }
            plots.append(
                PRPlot(
                    fileName: fileName(c.name),
                    chart: LineChart(
                        title:
                            "\(c.name): AP \(fraction(c.ap, 4)) (\(main.metric.rawValue), "
                            + "IoU>\(threshold(main.iouThreshold)))",
                        xLabel: "recall", yLabel: "precision", series: series, xRange: 0...1, yRange: 0...1.05)))
            summarySeries.append(
                LineSeries(name: "", xs: c.recall, ys: envelope(c.precision), color: Palette.color(k), lineWidth: 1))
            let sampled = interpolated(recall: c.recall, precision: c.precision, at: grid)
            for i in grid.indices { meanCurve[i] += sampled[i] }
            counted += 1
        }
        if counted > 0 { meanCurve = meanCurve.map { $0 / Double(counted) } }
        summarySeries.append(
            LineSeries(name: "mean of \(counted) classes", xs: grid, ys: meanCurve, color: Palette.black, lineWidth: 3))
        plots.append(
            PRPlot(
                fileName: "summary.png",
                chart: LineChart(
                    title:
                        "mAP \(fraction(main.mAP, 4)) (\(main.metric.rawValue), IoU>\(threshold(main.iouThreshold)))",
                    xLabel: "recall", yLabel: "precision", series: summarySeries, xRange: 0...1, yRange: 0...1.05)))
    }
    return plots
}

/// Renders the charts and writes them as PNGs into `folder` (created when missing); returns the files.
@discardableResult
public func writePRPlots(_ result: EvaluationResult, to folder: URL, width: Int = 800, height: Int = 600) throws
    -> [URL]
{
    do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    } catch {
        throw InputError(file: folder.path, message: "cannot create the plots folder: \(error.localizedDescription)")
    }
    return try prPlots(result).map { plot in
        let url = folder.appendingPathComponent(plot.fileName)
        try ImageIO.writePNG(plot.chart.render(width: width, height: height), to: url)
        return url
    }
}

/// Precision at the recall thresholds for IoU 0.50, 0.75 and the mean over all thresholds.
private func cocoCurves(_ e: COCOEvaluation, category k: Int, t50: Int?, t75: Int?) -> [[Double]] {
    let R = e.parameters.recallThresholds.count, T = e.parameters.iouThresholds.count
    let m = e.parameters.maxDetections.count - 1
    func at(_ t: Int, _ r: Int) -> Double { max(e.precision(iou: t, recall: r, category: k, area: 0, maxDets: m), 0) }
    return [
        (0..<R).map { r in t50.map { at($0, r) } ?? 0 },
        (0..<R).map { r in t75.map { at($0, r) } ?? 0 },
        (0..<R).map { r in (0..<T).reduce(0) { $0 + at($1, r) } / Double(T) }
    ]
}

private func cocoChart(title: String, recall: [Double], curves: [[Double]]) -> LineChart {
    LineChart(
        title: title, xLabel: "recall", yLabel: "precision",
        series: [
            LineSeries(name: "IoU=0.50", xs: recall, ys: curves[0], color: Palette.color(0), lineWidth: 2),
            LineSeries(name: "IoU=0.75", xs: recall, ys: curves[1], color: Palette.color(1), lineWidth: 2),
            LineSeries(name: "IoU=0.50:0.95 (mean)", xs: recall, ys: curves[2], color: Palette.black, lineWidth: 3)
        ], xRange: 0...1, yRange: 0...1.05)
}

/// Precision made monotone from the right.
func envelope(_ precision: [Double]) -> [Double] {
    var p = precision
    var i = p.count - 1
    while i > 0 {
        p[i - 1] = max(p[i - 1], p[i])
        i -= 1
    }
    return p
}

/// Interpolated precision at each grid recall: the best precision at recall >= it (0 when never reached).
func interpolated(recall: [Double], precision: [Double], at grid: [Double]) -> [Double] {
    let env = envelope(precision)
    var j = 0
    return grid.map { r in
        while j < recall.count && recall[j] < r { j += 1 }
        return j < recall.count ? env[j] : 0
    }
}

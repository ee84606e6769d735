import Foundation
import Imaging

/// Training curves as in the ResNet paper's figures: a thin line for the training error and a bold line
/// for the test (validation) error, in percent, against iterations.
public enum TrainingCurve {
    public static func readLog(_ url: URL) throws -> [LogEntry] {
        let text = try String(contentsOf: url, encoding: .utf8)
        let dec = JSONDecoder()
        return try text.split(separator: "\n").map { try dec.decode(LogEntry.self, from: Data($0.utf8)) }
    }

    public static func render(_ entries: [LogEntry], title: String, window: Int = 100) -> RGBImage {
        let train = entries.filter { $0.trainError != nil }
        var xs: [Double] = [], ys: [Double] = []
        var acc: [Float] = []
        for e in train {
            acc.append(e.trainError!)
            if acc.count > window { acc.removeFirst() }
            xs.append(Double(e.iteration)); ys.append(Double(acc.reduce(0, +) / Float(acc.count)) * 100)
        }
        let val = entries.filter { $0.valError != nil }
        var series = [LineSeries(name: "training error", xs: xs, ys: ys, color: (70, 110, 200), lineWidth: 1)]
        if !val.isEmpty {
            series.append(
                LineSeries(
                    name: "validation error", xs: val.map { Double($0.iteration) },
                    ys: val.map { Double($0.valError!) * 100 }, color: (200, 60, 40), lineWidth: 4))
        }
        let chart = LineChart(
            title: title, xLabel: "iteration", yLabel: "error (%)", series: series,
            xRange: nil, yRange: 0...100, logY: false)
        return chart.render(width: 900, height: 600)
    }
}

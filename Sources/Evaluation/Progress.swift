import Foundation

/// A one-line progress bar with count, rate and ETA, for stderr:
/// `[##########----------]  12/40  2.5 files/s  ETA 0:11`.
public struct ProgressBar: Sendable {
    public var total: Int
    public var unit: String
    public var width: Int

    public init(total: Int, unit: String = "files", width: Int = 24) {
        self.total = total
        self.unit = unit
        self.width = width
    }

    /// The line after `done` items in `elapsed` seconds (ETA from the average rate so far).
    public func line(done: Int, elapsed: Double) -> String {
        let fraction = total > 0 ? min(Double(done) / Double(total), 1) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let count = String(repeating: " ", count: max(String(total).count - String(done).count, 0)) + "\(done)/\(total)"
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let rateText = rate > 0 ? (rate >= 10 ? String(format: "%.0f", rate) : String(format: "%.2g", rate)) + " \(unit)/s" : "- \(unit)/s"
        let eta: String
        if done >= total {
            eta = "done in " + Self.clock(elapsed)
        } else if rate > 0 {
            eta = "ETA " + Self.clock(Double(total - done) / rate)
        } else {
            eta = "ETA -"
        }
        return "[\(bar)] \(count)  \(rateText)  \(eta)"
    }

    /// m:ss, or h:mm:ss from an hour on.
    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

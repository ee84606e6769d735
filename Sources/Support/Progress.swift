import Foundation

/// A progress line on stderr with count, rate, ETA and free-form fields (losses, accuracy):
/// `train [########------------]  1200/64000  85.3 img/s  ETA 3:12:40  loss 1.234  lr 0.1`.
/// On a terminal it redraws in place; otherwise (logs, CI) it prints a line at most every `interval` s.
public final class Progress {
    public let total: Int
    public let label: String
    public let unit: String
    public var unitsPerStep: Double
    private let start = Date()
    private var lastPrint = Date.distantPast
    private let isTTY = isatty(fileno(stderr)) != 0
    private let interval: TimeInterval
    private let startStep: Int
    public var enabled = true

    public init(
        total: Int, label: String, unit: String = "it", unitsPerStep: Double = 1, startStep: Int = 0,
        interval: TimeInterval = 10, enabled: Bool = true
    ) {
        self.total = total; self.label = label; self.unit = unit; self.unitsPerStep = unitsPerStep
        self.startStep = startStep; self.interval = interval; self.enabled = enabled
    }

    public static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "-" }
        let s = Int(seconds.rounded())
        return s >= 3600
            ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    public func line(done: Int, fields: String) -> String {
        line(done: done, elapsed: Date().timeIntervalSince(start), fields: fields)
    }

    /// The line after `done` steps in `elapsed` seconds.
    public func line(done: Int, elapsed: TimeInterval, fields: String = "") -> String {
        let frac = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let width = 20, filled = Int(frac * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let stepsDone = Double(done - startStep)
        let rate = elapsed > 0 ? stepsDone * unitsPerStep / elapsed : 0
        let eta = stepsDone > 0 ? Double(total - done) * elapsed / stepsDone : .infinity
        let rateText = rate >= 100 ? String(format: "%.0f", rate) : String(format: "%.3g", rate)
        let tail = done >= total ? "done in \(Self.clock(elapsed))" : "ETA \(Self.clock(eta))"
        return
            "\(label) [\(bar)] \(done)/\(total)  \(rateText) \(unit)/s  \(tail)\(fields.isEmpty ? "" : "  " + fields)"
    }

    /// Reports progress; prints when due (always at the end).
    public func update(_ done: Int, _ fields: String = "") {
        guard enabled else { return }
        let now = Date()
        let final = done >= total
        if !final && now.timeIntervalSince(lastPrint) < (isTTY ? 0.2 : interval) { return }
        lastPrint = now
        let text = line(done: done, fields: fields)
        if isTTY {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text + (final ? "\n" : "")).utf8))
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    /// Prints a message above the progress line (on stderr, or on stdout with `toStdout`). A disabled
    /// progress line still passes messages on stdout through: they are output, not progress.
    public func note(_ message: String, toStdout: Bool = false) {
        clearLine()
        if toStdout {
            print(message)
            fflush(stdout)
        } else if enabled {
            FileHandle.standardError.write(Data((message + "\n").utf8))
        }
    }

    /// Erases the progress line being redrawn on a terminal, so that a message can take its place.
    private func clearLine() {
        if enabled && isTTY { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    /// Prints an error message on stderr above the progress line, enabled or not.
    public func error(_ message: String) {
        clearLine()
        fflush(stdout)
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

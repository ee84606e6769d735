import Foundation

/// One chart axis: the data range it shows, linear or logarithmic, with "nice" tick values and their labels.
struct Axis {
    struct Tick {
        var value: Double
        var label: String
    }

    /// Shown range in data units (for a log axis both ends are positive).
    var lo: Double
    var hi: Double
    var log: Bool
    /// Labelled ticks, inside lo...hi.
    var ticks: [Tick]
    /// Unlabelled grid positions between the ticks (log axes: 2x ... 9x each decade).
    var minorTicks: [Double]

    /// Position of `value` along the axis, 0 at `lo` and 1 at `hi` (outside 0...1 beyond the range; NaN for
    /// values a log axis cannot show).
    func fraction(_ value: Double) -> Double {
        if log {
            guard value > 0 else { return .nan }
            return (Foundation.log10(value) - Foundation.log10(lo)) / (Foundation.log10(hi) - Foundation.log10(lo))
        }
        return (value - lo) / (hi - lo)
    }

    /// A linear axis. With a fixed `range` the ends are kept exactly; otherwise the data extent is widened to
    /// multiples of the tick step. Degenerate or missing data get a sensible non-empty range.
    static func linear(dataMin: Double?, dataMax: Double?, range: ClosedRange<Double>?, targetTicks: Int) -> Axis {
        var lo: Double, hi: Double
        if let range, range.lowerBound.isFinite, range.upperBound.isFinite, range.upperBound > range.lowerBound {
            (lo, hi) = (range.lowerBound, range.upperBound)
        } else {
            (lo, hi) = (dataMin ?? 0, dataMax ?? 1)
            if let range, range.lowerBound.isFinite, range.upperBound.isFinite {  // a single value
                (lo, hi) = (range.lowerBound, range.upperBound)
            }
            if hi <= lo {
                let delta = lo == 0 ? 1 : abs(lo) * 0.1
                (lo, hi) = (lo - delta, hi + delta)
            }
            let step = niceStep(hi - lo, target: targetTicks)
            lo = (lo / step).rounded(.down) * step
            hi = (hi / step).rounded(.up) * step
        }
        let step = niceStep(hi - lo, target: targetTicks)
        let first = (lo / step - 1e-9).rounded(.up), last = (hi / step + 1e-9).rounded(.down)
        var values = [Double]()
        if first <= last, last - first < 1000 {
            for k in stride(from: first, through: last, by: 1) {
                let v = k * step
                values.append(abs(v) < step * 1e-9 ? 0 : v)
            }
        }
        let labels = format(values, step: step)
        return Axis(
            lo: lo, hi: hi, log: false, ticks: zip(values, labels).map { Tick(value: $0, label: $1) },
            minorTicks: [])
    }

    /// A base-10 logarithmic axis; non-positive data are ignored. Without a fixed range the ends are widened
    /// to powers of ten.
    static func logarithmic(dataMin: Double?, dataMax: Double?, range: ClosedRange<Double>?) -> Axis {
        var lo: Double, hi: Double
        if let range, range.lowerBound > 0, range.upperBound > range.lowerBound, range.upperBound.isFinite {
            (lo, hi) = (range.lowerBound, range.upperBound)
        } else {
            lo = dataMin ?? 0.1
            hi = dataMax ?? 1
            if lo <= 0 || !lo.isFinite { lo = hi > 0 ? hi / 10 : 0.1 }
            if hi <= lo { hi = lo * 10 }
            lo = pow(10, Foundation.log10(lo).rounded(.down))
            hi = pow(10, Foundation.log10(hi).rounded(.up))
            if hi <= lo { hi = lo * 10 }
        }
        // Keep both ends finite and positive so every position below is finite.
        lo = min(max(lo, 1e-300), 1e299)
        hi = min(hi, 1e300)
        if !(hi > lo) { hi = lo * 10 }
        let firstDecade = Int(Foundation.log10(lo).rounded(.down)), lastDecade = Int(Foundation.log10(hi).rounded(.up))
        let decades = max(Foundation.log10(hi) - Foundation.log10(lo), 1e-9)
        let majorMultipliers: [Double] = decades < 1.5 ? [1, 2, 5] : [1]
        var ticks = [Tick](), minor = [Double]()
        let tolerance = 1e-9
        if lastDecade - firstDecade <= 400 {
            for e in firstDecade...lastDecade {
                let base = pow(10, Double(e))
                for m in 1...9 {
                    let v = Double(m) * base
                    guard v >= lo * (1 - tolerance), v <= hi * (1 + tolerance) else { continue }
                    if majorMultipliers.contains(Double(m)) {
                        ticks.append(Tick(value: v, label: logLabel(multiplier: m, exponent: e)))
                    } else {
                        minor.append(v)
                    }
                }
            }
        }
        return Axis(lo: lo, hi: hi, log: true, ticks: ticks, minorTicks: minor)
    }

    /// 1, 2, 2.5 or 5 times a power of ten, about `span / target`.
    static func niceStep(_ span: Double, target: Int) -> Double {
        let raw = span / Double(max(target, 1))
        guard raw > 0, raw.isFinite else { return 1 }
        let magnitude = pow(10, Foundation.log10(raw).rounded(.down))
        let f = raw / magnitude
        let nice: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10
        return nice * magnitude
    }

    /// Labels with the fewest decimals that show every value exactly ("0", "0.25", "0.5"); scientific
    /// notation for very large or very small magnitudes.
    static func format(_ values: [Double], step: Double) -> [String] {
        let largest = values.map(abs).max() ?? 0
        if largest >= 1e6 || (step < 1e-4 && largest > 0) {
            return values.map { $0 == 0 ? "0" : String(format: "%.3g", $0) }
        }
        var decimals = 0
        while decimals < 8 {
            let scale = pow(10, Double(decimals))
            if values.allSatisfy({ abs(($0 * scale).rounded() - $0 * scale) < 1e-6 }) { break }
            decimals += 1
        }
        return values.map { String(format: "%.\(decimals)f", $0) }
    }

    /// "0.01", "5", "200", or "1e-05"-style for exponents outside -4 ... 5.
    static func logLabel(multiplier: Int, exponent: Int) -> String {
        if exponent >= -4 && exponent <= 5 {
            let v = Double(multiplier) * pow(10, Double(exponent))
            return format([v], step: pow(10, Double(exponent)))[0]
        }
        return "\(multiplier)e\(exponent)"
    }
}

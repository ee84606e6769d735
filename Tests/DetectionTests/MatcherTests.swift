import XCTest
import TestSupport
import Engine
import NN
import Detection

final class MatcherTests: XCTestCase {
    /// Brute force straight from the definition, one prediction at a time.
    private func bruteMatch(_ q: [[Float]], predictions p: Int, high: Float, low: Float, allowLow: Bool) -> [Int] {
        if q.isEmpty { return [Int](repeating: -1, count: p) }
        var out: [Int] = []
        for j in 0..<p {
            let column = q.map { $0[j] }
            let best = column.max()!
            let g = column.firstIndex(of: best)!
            // Is j one of the highest-IoU predictions of some GT (with a positive IoU)?
            let lowQuality = allowLow && q.contains { row in row[j] > 0 && row[j] == row.max()! }
            if best >= high || lowQuality {
                out.append(g)
            } else if best < low {
                out.append(-1)
            } else {
                out.append(-2)
            }
        }
        return out
    }

    private func rows(_ t: Tensor) -> [[Float]] {
        (0..<t.shape[0]).map { Array(t.scalars[($0 * t.shape[1])..<(($0 + 1) * t.shape[1])]) }
    }

    /// Equal to torchvision's Matcher in plain torch and to the brute force: ordinary GTs, GTs with no anchor
    /// above 0.7 (positive only through low-quality matches), with and without them, head thresholds, tied
    /// GTs (duplicate boxes: the lower index wins).
    func testMatchesTorchvisionAndBruteForce() throws {
        let f = try fixture("matcher")
        for name in try caseNames(f) {
            let p = try caseParams(f, name)
            let high = (p["high"] as! NSNumber).floatValue, low = (p["low"] as! NSNumber).floatValue
            let allow = p["allow_low_quality"] as! Bool
            let matcher = try Matcher(highThreshold: high, lowThreshold: low, allowLowQualityMatches: allow)
            let q = try f.tensor("\(name).quality")
            // The IoU matrix itself comes from this module.
            assertClose(
                pairwiseIoU(try f.tensor("\(name).gt"), try f.tensor("anchors")), q, rtol: 0, atol: 0, "\(name) IoU")
            let got = matcher(q)
            XCTAssertEqual(got, try ints(f, "\(name).matches"), name)
            XCTAssertEqual(
                got, bruteMatch(rows(q), predictions: q.shape[1], high: high, low: low, allowLow: allow), name)
        }
    }

    /// In m1 no GT reaches 0.7: every GT is positive exactly at its best anchors (all ties), only when
    /// low-quality matches are allowed.
    func testLowQualityMatchesGiveEveryGTAPositive() throws {
        let f = try fixture("matcher")
        let q = try f.tensor("m1.quality")
        let g = q.shape[0], n = q.shape[1]
        for k in 0..<g { XCTAssertLessThan(rows(q)[k].max()!, 0.7) }
        let with = Matcher.rpn(q)
        let without = try Matcher(highThreshold: 0.7, lowThreshold: 0.3, allowLowQualityMatches: false)(q)
        XCTAssertTrue(without.allSatisfy { $0 < 0 })
        for k in 0..<g {
            let row = rows(q)[k], best = row.max()!
            for j in 0..<n where row[j] == best { XCTAssertGreaterThanOrEqual(with[j], 0, "GT \(k) anchor \(j)") }
        }
    }

    /// Random matrices with ties (values on a coarse grid) against the brute force.
    func testRandomAgainstBruteForce() throws {
        var rng = SeededRNG(seed: 13)
        for (g, p) in [(1, 30), (3, 200), (7, 50), (2, 1)] {
            let q = Tensor((0..<(g * p)).map { _ in Float(rng.int(below: 11)) / 10 }, shape: [g, p])
            for m in [
                Matcher.rpn, Matcher.roiHead,
                try Matcher(highThreshold: 0.6, lowThreshold: 0.2, allowLowQualityMatches: true)
            ] {
                XCTAssertEqual(
                    m(q),
                    bruteMatch(
                        rows(q), predictions: p, high: m.highThreshold, low: m.lowThreshold,
                        allowLow: m.allowLowQualityMatches), "\(g)x\(p)")
            }
        }
    }

    /// No GT: every anchor is background; a GT overlapping nothing adds no low-quality matches.
    func testNoGroundTruthAndUnreachableGT() {
        XCTAssertEqual(Matcher.rpn(Tensor(zeros: [0, 5])), [-1, -1, -1, -1, -1])
        XCTAssertEqual(Matcher.rpn(Tensor(zeros: [0, 0])), [])
        let q = Tensor([0.75, 0.2, 0, 0, 0, 0], shape: [2, 3])
        XCTAssertEqual(Matcher.rpn(q), [0, -1, -1])
        XCTAssertEqual(Matcher.labels(from: [2, -1, -2, 0]), [1, 0, -1, 1])
    }

    func testThresholdsCompareInFloat32() throws {
        // 0.7 as Float is below 0.7 as Double; torch compares in Float32, so it counts as >= 0.7.
        let q = Tensor([Float(0.7), Float(0.3), Float(0.3).nextDown], shape: [1, 3])
        let m = try Matcher(highThreshold: 0.7, lowThreshold: 0.3, allowLowQualityMatches: false)
        XCTAssertEqual(m(q), [0, -2, -1])
        XCTAssertThrowsError(try Matcher(highThreshold: 0.3, lowThreshold: 0.7, allowLowQualityMatches: true)) {
            XCTAssertTrue("\($0)".contains("low <= high"))
        }
    }
}

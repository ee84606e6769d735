import XCTest
import Engine
import NN
import Detection

final class SamplerTests: XCTestCase {
    private func labels(pos: Int, neg: Int, ignored: Int, rng: inout SeededRNG) -> [Int] {
        var l = [Int](repeating: 1, count: pos) + [Int](repeating: 0, count: neg) + [Int](repeating: -1, count: ignored)
        l.shuffle(using: &rng)
        return l
    }

    /// Counts follow min(#fg, B * fraction) and min(#bg, B - chosen positives); chosen indices are distinct,
    /// sorted, and carry the right labels (class labels > 1 count as foreground).
    func testCountsAndMembershipAgainstBruteForce() throws {
        var rng = SeededRNG(seed: 1)
        let cases: [(Int, Int, Int, Int, Float)] = [
            (10, 3000, 200, 256, 0.5),  // few positives: filled up with negatives
            (500, 3000, 200, 256, 0.5),  // many of both
            (0, 40, 10, 256, 0.5),  // no-GT image: all negatives, fewer than asked
            (300, 20, 0, 512, 0.25),  // few negatives
            (0, 0, 30, 256, 0.5),  // everything ignored
            (7, 9, 3, 512, 1.0)
        ]
        for (pos, neg, ign, batch, frac) in cases {
            let sampler = try BalancedSampler(batchSizePerImage: batch, positiveFraction: frac)
            var l = labels(pos: pos, neg: neg, ignored: ign, rng: &rng)
            if pos > 0 { l[l.firstIndex(of: 1)!] = 3 }  // a class label, still foreground
            let s = sampler(l, rng: &rng)
            let wantPos = min(pos, Int(Float(batch) * frac)), wantNeg = min(neg, batch - wantPos)
            XCTAssertEqual(s.positive.count, wantPos, "\(pos)/\(neg)/\(ign)")
            XCTAssertEqual(s.negative.count, wantNeg, "\(pos)/\(neg)/\(ign)")
            XCTAssertEqual(s.positive, s.positive.sorted())
            XCTAssertEqual(Set(s.positive).count, s.positive.count)
            XCTAssertEqual(Set(s.negative).count, s.negative.count)
            XCTAssertTrue(s.positive.allSatisfy { l[$0] > 0 })
            XCTAssertTrue(s.negative.allSatisfy { l[$0] == 0 })
        }
    }

    /// Same generator state, same sample; a different state, a different one.
    func testDeterministicGivenRNG() throws {
        var rng = SeededRNG(seed: 3)
        let l = labels(pos: 100, neg: 1000, ignored: 50, rng: &rng)
        let sampler = try BalancedSampler(batchSizePerImage: 256, positiveFraction: 0.5)
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42), c = SeededRNG(seed: 43)
        XCTAssertEqual(sampler(l, rng: &a), sampler(l, rng: &b))
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(sampler(l, rng: &a), sampler(l, rng: &c))
    }

    /// Every candidate is equally likely: over many draws each positive (negative) is chosen about
    /// k / n of the time (binomial bounds, 6 sigma).
    func testUniformSelection() throws {
        let l = [Int](repeating: 1, count: 20) + [Int](repeating: 0, count: 30)
        let sampler = try BalancedSampler(batchSizePerImage: 16, positiveFraction: 0.25)  // 4 of 20, 12 of 30
        var rng = SeededRNG(seed: 77)
        var hits = [Int](repeating: 0, count: 50)
        let draws = 4000
        for _ in 0..<draws {
            let s = sampler(l, rng: &rng)
            for i in s.positive + s.negative { hits[i] += 1 }
        }
        for i in 0..<50 {
            let p = i < 20 ? 4.0 / 20 : 12.0 / 30
            let mean = Double(draws) * p, sd = (Double(draws) * p * (1 - p)).squareRoot()
            XCTAssertLessThan(abs(Double(hits[i]) - mean), 6 * sd, "index \(i): \(hits[i]) vs \(mean)")
        }
    }

    func testBadConfigurationsThrow() {
        XCTAssertThrowsError(try BalancedSampler(batchSizePerImage: 0, positiveFraction: 0.5)) {
            XCTAssertTrue("\($0)".contains("batchSizePerImage"))
        }
        XCTAssertThrowsError(try BalancedSampler(batchSizePerImage: 256, positiveFraction: 1.5)) {
            XCTAssertTrue("\($0)".contains("positiveFraction"))
        }
    }
}

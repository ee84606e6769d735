import XCTest
import TestSupport
import Engine
import NN
import Detection

final class BoxTests: XCTestCase {
    /// Brute-force IoU in Double from the definition (overlap rectangle of the two boxes).
    private func bruteIoU(_ a: [Float], _ b: [Float]) -> Double {
        let ix = max(0, Double(min(a[2], b[2])) - Double(max(a[0], b[0])))
        let iy = max(0, Double(min(a[3], b[3])) - Double(max(a[1], b[1])))
        let inter = ix * iy
        if inter == 0 { return 0 }
        let areaA = Double(a[2] - a[0]) * Double(a[3] - a[1]), areaB = Double(b[2] - b[0]) * Double(b[3] - b[1])
        return inter / (areaA + areaB - inter)
    }

    func testIoUMatchesBruteForce() {
        var rng = SeededRNG(seed: 11)
        let a = randomBoxes(37, extent: 100, maxSide: 60, rng: &rng),
            b = randomBoxes(53, extent: 100, maxSide: 60, rng: &rng)
        let m = pairwiseIoU(a, b)
        XCTAssertEqual(m.shape, [37, 53])
        var nonzero = 0
        for i in 0..<37 {
            for j in 0..<53 {
                let ref = bruteIoU(Array(a.scalars[(4 * i)..<(4 * i + 4)]), Array(b.scalars[(4 * j)..<(4 * j + 4)]))
                XCTAssertEqual(Double(m.data[i * 53 + j]), ref, accuracy: 1e-6, "(\(i), \(j))")
                if ref > 0 { nonzero += 1 }
            }
        }
        XCTAssertGreaterThan(nonzero, 200, "the test should exercise overlapping pairs")
    }

    /// Equal to torchvision's box_iou (plain torch) incl. touching (0), identical (1), nested, zero-width and
    /// exactly-one-half pairs.
    func testIoUMatchesTorchvisionFormula() throws {
        let f = try fixture("iou")
        let m = pairwiseIoU(try f.tensor("a"), try f.tensor("b"))
        let ref = try f.tensor("iou")
        assertClose(m, ref, rtol: 0, atol: 0, "iou")
        XCTAssertEqual(m.data[0 * 11 + 0], 0)  // touching
        XCTAssertEqual(m.data[0 * 11 + 1], 1)  // identical
        XCTAssertEqual(m.data[0 * 11 + 3], 0)  // zero width
        XCTAssertEqual(m.data[1 * 11 + 4], 0.5)  // exactly one half
        XCTAssertEqual(pairwiseIoU(Tensor(zeros: [0, 4]), try f.tensor("b")).shape, [0, 11])
    }

    func testDegenerateBoxesGiveZeroNotNaN() {
        let e = Tensor([5, 5, 5, 9], shape: [1, 4])
        XCTAssertEqual(pairwiseIoU(e, e).item(), 0)
    }

    func testAreaClipRemoveSmallAndSelect() {
        let b = Tensor([-5, 2, 30, 12, 10, -3, 12, 50, 3, 3, 3.5, 40, 8, 8, 6, 9], shape: [4, 4])
        XCTAssertEqual(boxArea(b).scalars, [350, 106, 18.5, -2])
        let c = clipBoxes(b, to: (height: 20, width: 25))
        XCTAssertEqual(c.scalars, [0, 2, 25, 12, 10, 0, 12, 20, 3, 3, 3.5, 20, 8, 8, 6, 9])
        XCTAssertEqual(removeSmall(b, minSize: 0.5), [0, 1, 2])  // width 0.5 >= 0.5 kept, inverted dropped
        XCTAssertEqual(removeSmall(b, minSize: 0.6), [0, 1])
        XCTAssertEqual(selectRows(b, [2, 0]).scalars, [3, 3, 3.5, 40, -5, 2, 30, 12])
        XCTAssertEqual(selectRows(b, []).shape, [0, 4])
    }
}

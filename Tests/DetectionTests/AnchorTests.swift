import XCTest
import TestSupport
import Engine
import NN
import Detection

final class AnchorTests: XCTestCase {
    /// Both conventions equal the torchvision / Detectron2 formulas (written in plain torch) bit for bit.
    func testAnchorsMatchReferenceFormulas() throws {
        let (f, cases) = try fixtureCases("anchors", expecting: 5)
        for (name, p) in cases {
            let gen = try AnchorGenerator(
                sizes: floats(p["sizes"]), aspectRatios: floats(p["ratios"]),
                stride: p["stride"] as! Int,
                convention: AnchorConvention(rawValue: p["convention"] as! String)!,
                offset: (p["offset"] as! NSNumber).floatValue)
            let a = gen.anchors(featureHeight: p["height"] as! Int, featureWidth: p["width"] as! Int)
            let ref = try f.tensor("\(name).anchors")
            XCTAssertEqual(a.shape, ref.shape, name)
            XCTAssertEqual(a.scalars, ref.scalars, name)
        }
    }

    /// The paper's default: 9 anchors per location, ratio-major, rounded, centred on (16x, 16y), locations
    /// row-major. Written out by hand.
    func testDefaultLayoutByHand() throws {
        let gen = try AnchorGenerator()
        XCTAssertEqual(gen.anchorsPerLocation, 9)
        let cell = gen.cellAnchors()
        // ratio 0.5 (h/w): h = sqrt(.5) * s, w = s / sqrt(.5); 128 -> w 181.02, h 90.51 -> [-91, -45, 91, 45]
        XCTAssertEqual(Array(cell[0..<4]), [-91, -45, 91, 45])
        XCTAssertEqual(Array(cell[4..<8]), [-181, -91, 181, 91])  // ratio 0.5, size 256
        XCTAssertEqual(Array(cell[16..<20]), [-128, -128, 128, 128])  // ratio 1, size 256 (index 1 * 3 + 1)
        XCTAssertEqual(Array(cell[24..<28]), [-45, -91, 45, 91])  // ratio 2, size 128 (index 6)
        let a = gen.anchors(featureHeight: 2, featureWidth: 3)
        XCTAssertEqual(a.shape, [2 * 3 * 9, 4])
        // Location (y 1, x 2) is the 6th location; its anchor 4 (ratio 1, size 256).
        let k = (1 * 3 + 2) * 9 + 4
        let expected: [Float] = [-96, -112, 160, 144]  // (32, 16) -/+ 128
        XCTAssertEqual(Array(a.scalars[(4 * k)..<(4 * k + 4)]), expected)
    }

    /// Half-integer corners round to even (torch.round), not away from zero.
    func testRoundHalfToEven() throws {
        let gen = try AnchorGenerator(sizes: [37, 45], aspectRatios: [1])
        XCTAssertEqual(gen.cellAnchors(), [-18, -18, 18, 18, -22, -22, 22, 22])
    }

    /// Detectron2: size-major order, exact (unrounded) corners, grid offset.
    func testDetectron2Layout() throws {
        let gen = try AnchorGenerator(sizes: [32, 64], aspectRatios: [0.5, 1, 2], convention: .detectron2, offset: 0.5)
        let cell = gen.cellAnchors()
        // index 1 = size 32, ratio 1; index 3 = size 64, ratio 0.5 (w = 64 * sqrt 2, h = 32 * sqrt 2)
        XCTAssertEqual(Array(cell[4..<8]), [-16, -16, 16, 16])
        let w = Float(64 * 2.0.squareRoot() / 2), h = Float(32 * 2.0.squareRoot() / 2)
        XCTAssertEqual(Array(cell[12..<16]), [-w, -h, w, h])
        let a = gen.anchors(featureHeight: 1, featureWidth: 2)
        let expected: [Float] = [8, -8, 40, 24]  // location x 1 at (24, 8) with offset 0.5, -/+ 16
        XCTAssertEqual(Array(a.scalars[(6 * 4 + 4)..<(6 * 4 + 8)]), expected)
    }

    func testBadConfigurationsThrowClearErrors() {
        XCTAssertThrowsError(try AnchorGenerator(sizes: [])) { XCTAssertTrue("\($0)".contains("sizes")) }
        XCTAssertThrowsError(try AnchorGenerator(sizes: [128, -1])) { XCTAssertTrue("\($0)".contains("[128.0, -1.0]")) }
        XCTAssertThrowsError(try AnchorGenerator(aspectRatios: [0])) {
            XCTAssertTrue("\($0)".contains("aspect ratios"))
        }
        XCTAssertThrowsError(try AnchorGenerator(stride: 0)) { XCTAssertTrue("\($0)".contains("stride")) }
        XCTAssertThrowsError(try AnchorGenerator(offset: 1)) { XCTAssertTrue("\($0)".contains("offset")) }
        XCTAssertEqual(AnchorConvention(rawValue: "detectron2"), .detectron2)
    }
}

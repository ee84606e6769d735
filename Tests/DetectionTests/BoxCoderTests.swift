import XCTest
import TestSupport
import Engine
import NN
import Detection

final class BoxCoderTests: XCTestCase {
    /// Encode and class-specific decode (incl. dw/dh clamping) equal torchvision's BoxCoder in plain torch.
    func testMatchesTorchvisionFormulas() throws {
        let f = try fixture("box_coder")
        for name in try caseNames(f) {
            let p = try caseParams(f, name)
            let coder = try BoxCoder(weights: floats(p["weights"]))
            let refs = try f.tensor("\(name).references")
            assertClose(
                coder.encode(try f.tensor("\(name).targets"), relativeTo: refs), try f.tensor("\(name).encoded"),
                rtol: 1e-6, atol: 1e-6, "\(name) encode")
            let decoded = coder.decode(try f.tensor("\(name).deltas"), relativeTo: refs)
            XCTAssertEqual(decoded.shape, [24, 4 * (p["classes"] as! Int)])
            assertClose(decoded, try f.tensor("\(name).decoded"), rtol: 1e-6, atol: 0, "\(name) decode")
        }
    }

    /// decode(encode(b)) == b for boxes within the clamp; both coders.
    func testRoundTrip() throws {
        var rng = SeededRNG(seed: 5)
        let refs = randomBoxes(100, extent: 800, minSide: 8, maxSide: 400, rng: &rng)
        let targets = randomBoxes(100, extent: 800, minSide: 8, maxSide: 400, rng: &rng)
        for coder in [BoxCoder.rpn, BoxCoder.roiHead] {
            let back = coder.decode(coder.encode(targets, relativeTo: refs), relativeTo: refs)
            assertClose(back, targets, rtol: 2e-6, atol: 0, "round trip \(coder.weights)")
        }
    }

    /// A huge dw is clamped at log(1000/16): the box grows at most 62.5 times; by hand.
    func testClampByHand() throws {
        let ref = Tensor([0, 0, 10, 20], shape: [1, 4])
        let d = BoxCoder.rpn.decode(Tensor([0, 0, 50, -1], shape: [1, 4]), relativeTo: ref)
        let h = 20 * Float(exp(-1.0))
        XCTAssertEqual(d.scalars[0], 5 - 312.5, accuracy: 1e-3)
        XCTAssertEqual(d.scalars[2], 5 + 312.5, accuracy: 1e-3)
        XCTAssertEqual(d.scalars[1], 10 - h / 2, accuracy: 1e-5)
        XCTAssertEqual(d.scalars[3], 10 + h / 2, accuracy: 1e-5)
        // Head coder: deltas are divided by (10, 10, 5, 5).
        let e = BoxCoder.roiHead.encode(Tensor([2, 4, 12, 24], shape: [1, 4]), relativeTo: ref)
        XCTAssertEqual(e.scalars[0], 10 * 2 / 10, accuracy: 1e-6)
        XCTAssertEqual(e.scalars[1], 10 * 4 / 20, accuracy: 1e-6)
        XCTAssertEqual(e.scalars[2], 0, accuracy: 1e-6)
    }

    func testBadWeightsThrow() {
        XCTAssertThrowsError(try BoxCoder(weights: [1, 1, 1])) { XCTAssertTrue("\($0)".contains("4 values")) }
        XCTAssertThrowsError(try BoxCoder(weights: [1, 0, 1, 1])) { XCTAssertTrue("\($0)".contains("positive")) }
        XCTAssertEqual(BoxCoder.defaultScaleClamp, Float(log(1000.0 / 16)))
    }
}

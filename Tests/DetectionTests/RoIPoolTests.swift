import XCTest
import TestSupport
import Engine
import NN
import Detection

final class RoIPoolTests: XCTestCase {
    /// Forward and backward equal the plain-numpy loops of torchvision's roi_pool kernel (cross-checked by
    /// torch autograd in the script), for RoIs inside, partly and entirely outside the map, tiny, inverted,
    /// on corners that round half away from zero, and for several output sizes and scales.
    func testMatchesReference() throws {
        try checkRoIOperator("roi_pool", cases: 4, y: (0, 0), gx: (1e-6, 1e-6)) { x, rois, size, scale, _ in
            roiPool(x, rois: rois, outputSize: size, spatialScale: scale)
        }
    }

    /// A hand-worked example: one 4x4 channel with values 0..15, 2x2 bins.
    func testByHand() {
        let x = Tensor((0..<16).map { Float($0) }, shape: [1, 1, 4, 4])
        // RoI (0, 0)-(48, 48) at scale 1/16 -> feature cells 0...3, bins [0,2) x [0,2) etc.
        let y = roiPool(x, rois: Tensor([0, 0, 0, 48, 48], shape: [1, 5]), outputSize: (2, 2), spatialScale: 1.0 / 16)
        XCTAssertEqual(y.scalars, [5, 7, 13, 15])
        // x1 = 8 -> 0.5 rounds to 1 (half away from zero); x2 = 40 -> 2.5 -> 3: columns 1...3, 3 wide, two bins
        // [0, 2) and [1, 3) of it; rows 0...0.
        let z = roiPool(x, rois: Tensor([0, 8, 0, 40, 0], shape: [1, 5]), outputSize: (1, 2), spatialScale: 1.0 / 16)
        XCTAssertEqual(z.scalars, [2, 3])
        // Entirely outside: empty bins are 0.
        let e = roiPool(
            x, rois: Tensor([0, 100, 100, 200, 200], shape: [1, 5]), outputSize: (2, 2), spatialScale: 1.0 / 16)
        XCTAssertEqual(e.scalars, [0, 0, 0, 0])
    }

    /// The (R, 4) + batch-index overload and a batch of two maps.
    func testBatchIndices() {
        var rng = SeededRNG(seed: 2)
        let x = Tensor.randn([2, 3, 6, 7], rng: &rng)
        let boxes = Tensor([0, 0, 60, 50, 10, 20, 90, 80], shape: [2, 4])
        let a = roiPool(x, boxes: boxes, batchIndices: [1, 0], outputSize: (3, 3), spatialScale: 1.0 / 16)
        let b = roiPool(
            x, rois: Tensor([1, 0, 0, 60, 50, 0, 10, 20, 90, 80], shape: [2, 5]), outputSize: (3, 3),
            spatialScale: 1.0 / 16)
        XCTAssertEqual(a.scalars, b.scalars)
        XCTAssertEqual(a.shape, [2, 3, 3, 3])
    }
}

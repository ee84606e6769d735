import XCTest
import Engine
import NN
import Detection

/// Sanity checks at production sizes (not timed): they must finish quickly in release and must not
/// allocate anything quadratic in the number of boxes.
final class PerformanceTests: XCTestCase {
    func testNMSOf12000Boxes() {
        var rng = SeededRNG(seed: 1)
        let n = 12000
        let boxes = randomBoxes(n, extent: 1000, minSide: 4, maxSide: 300, rng: &rng)
        let scores = Tensor((0..<n).map { _ in rng.nextFloat() }, shape: [n])
        let before = Storage.liveBytes.value
        let keep = nms(boxes, scores: scores, iouThreshold: 0.7)
        XCTAssertLessThan(Storage.liveBytes.value - before, 1 << 20)
        XCTAssertGreaterThan(keep.count, 100)
        XCTAssertEqual(Array(nms(boxes, scores: scores, iouThreshold: 0.7, maxOutputs: 2000)), Array(keep.prefix(2000)))
        // The worst case: nothing suppresses anything (disjoint boxes).
        let grid = Tensor((0..<n).flatMap { i -> [Float] in
            let x = Float(i % 120) * 10, y = Float(i / 120) * 10
            return [x, y, x + 9, y + 9]
        }, shape: [n, 4])
        XCTAssertEqual(nms(grid, scores: scores, iouThreshold: 0.7).count, n)
    }

    func testRoIAlignAndRoIPoolAtC4Sizes() {
        var rng = SeededRNG(seed: 2)
        let x = Tensor.uniform([1, 1024, 38, 63], -1, 1, rng: &rng, requiresGrad: true)
        let rois = makeRoIs(boxes: clipBoxes(randomBoxes(300, extent: 1000, minSide: 8, maxSide: 400, rng: &rng),
                                             to: (height: 600, width: 1000)))
        for pooled in [roiAlign(x, rois: rois, outputSize: (14, 14), spatialScale: 1.0 / 16),
                       roiPool(x, rois: rois, outputSize: (14, 14), spatialScale: 1.0 / 16)] {
            XCTAssertEqual(pooled.shape, [300, 1024, 14, 14])
            x.grad = nil
            sum(pooled).backward()
            XCTAssertEqual(x.grad?.shape, x.shape)
        }
    }
}

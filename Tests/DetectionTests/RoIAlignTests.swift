import XCTest
import TestSupport
import Engine
import NN
import Detection

final class RoIAlignTests: XCTestCase {
    /// Forward and backward equal the plain-numpy loops of torchvision's roi_align kernel (cross-checked by
    /// torch autograd in the script): aligned and not, adaptive and fixed sampling, RoIs partly and
    /// entirely outside the map, tiny, empty and inverted.
    func testMatchesReference() throws {
        try checkRoIOperator("roi_align", cases: 6, y: (1e-6, 1e-6), gx: (1e-6, 1e-6)) { x, rois, size, scale, p in
            roiAlign(
                x, rois: rois, outputSize: size, spatialScale: scale, samplingRatio: p["sampling_ratio"] as! Int,
                aligned: p["aligned"] as! Bool)
        }
    }

    /// A hand-worked example: values v(y, x) = 10 y + x are linear, so bilinear samples are exact and each
    /// bin's average is v at the bin centre (when all samples stay inside the map).
    func testLinearMapByHand() {
        let x = Tensor((0..<36).map { Float(10 * ($0 / 6) + $0 % 6) }, shape: [1, 1, 6, 6])
        // Aligned, scale 1: RoI (1, 1)-(5, 5) -> continuous [0.5, 4.5], bins of 2: centres 1.5 and 3.5.
        let y = roiAlign(x, rois: Tensor([0, 1, 1, 5, 5], shape: [1, 5]), outputSize: (2, 2), spatialScale: 1)
        XCTAssertEqual(y.scalars, [16.5, 18.5, 36.5, 38.5])
        // Samples past the last row/column read that row/column; below -1 they are 0.
        let z = roiAlign(x, rois: Tensor([0, 6, 6, 7, 7], shape: [1, 5]), outputSize: (1, 1), spatialScale: 1)
        XCTAssertEqual(z.scalars, [55])  // sample at (6, 6): clamped to (5, 5)
        let o = roiAlign(x, rois: Tensor([0, -3, -3, -2, -2], shape: [1, 5]), outputSize: (1, 1), spatialScale: 1)
        XCTAssertEqual(o.scalars, [0])  // sample at (-3, -3): outside
    }

    /// Central finite differences of L = sum(roiAlign(x) * r) agree with the analytic gradient.
    func testFiniteDifferenceGradient() {
        var rng = SeededRNG(seed: 9)
        let x = Tensor.randn([2, 2, 7, 9], rng: &rng, requiresGrad: true)
        let rois = Tensor(
            [0, 3, 5, 100, 90, 1, -20, -10, 50, 60, 0, 40, 30, 44, 33, 1, 60, 50, 170, 140],
            shape: [4, 5])
        let y = roiAlign(x, rois: rois, outputSize: (3, 3), spatialScale: 1.0 / 16)
        let r = Tensor.randn(y.shape, rng: &rng)
        sum(y * r).backward()
        let g = x.grad!
        func loss() -> Double {
            let y = GradMode.withoutGrad { roiAlign(x, rois: rois, outputSize: (3, 3), spatialScale: 1.0 / 16) }
            return (0..<y.count).reduce(0) { $0 + Double(y.data[$1]) * Double(r.data[$1]) }
        }
        let eps: Float = 0.1  // the op is linear in x: no curvature error, less rounding noise
        var nonzero = 0
        for i in 0..<x.count {
            let old = x.data[i]
            x.data[i] = old + eps
            let lp = loss()
            x.data[i] = old - eps
            let lm = loss()
            x.data[i] = old
            let num = Float((lp - lm) / Double(2 * eps))
            XCTAssertEqual(num, g.data[i], accuracy: 1e-3 + 1e-3 * abs(num), "element \(i)")
            if g.data[i] != 0 { nonzero += 1 }
        }
        XCTAssertGreaterThan(nonzero, 50)
    }

    /// RoIs are processed in blocks of 64 and channels in groups: 70 RoIs over 40 channels give the same
    /// values, and the same accumulated gradient, as each RoI on its own.
    func testBlocksEqualSingleRoIs() {
        var rng = SeededRNG(seed: 4)
        let x = Tensor.randn([2, 40, 8, 10], rng: &rng, requiresGrad: true)
        let boxes = randomBoxes(70, extent: 120, maxSide: 80, rng: &rng)
        let rois = makeRoIs(boxes: boxes, batchIndices: (0..<70).map { $0 % 2 })
        let all = roiAlign(x, rois: rois, outputSize: (4, 4), spatialScale: 1.0 / 16)
        XCTAssertEqual(all.shape, [70, 40, 4, 4])
        let gy = Tensor.randn(all.shape, rng: &rng)
        all.backward(gy)
        let gAll = x.grad!
        x.grad = nil
        for k in 0..<70 {
            let one = roiAlign(x, rois: selectRows(rois, [k]), outputSize: (4, 4), spatialScale: 1.0 / 16)
            XCTAssertEqual(one.scalars, Array(all.scalars[(k * 640)..<((k + 1) * 640)]), "RoI \(k)")
            one.backward(selectRows(gy, [k]))
        }
        assertClose(x.grad!, gAll, rtol: 1e-6, atol: 1e-6, "accumulated gradient")
    }

    /// The channels-last output of both poolers (the channels-last inference path) holds exactly the values of the
    /// channels-first one, transposed, with RoIs in and out of the map and channel counts around the groups.
    func testChannelsLastOutputEqualsChannelsFirst() throws {
        var rng = SeededRNG(seed: 8)
        for (c, kind) in [(3, RoIPoolerKind.roialign), (37, .roialign), (3, .roipool), (37, .roipool)] {
            let x = Tensor.randn([2, c, 9, 11], rng: &rng)
            let boxes = randomBoxes(23, extent: 200, maxSide: 120, rng: &rng)
            let rois = makeRoIs(boxes: boxes, batchIndices: (0..<23).map { $0 % 2 })
            let pooler = try RoIPooler(kind: kind, outputSize: 5)
            let first = pooler(x, rois: rois), last = pooler(x, rois: rois, channelsLast: true)
            XCTAssertEqual(last.shape, [23, 5, 5, c])
            XCTAssertEqual(toChannelsLast(first).scalars, last.scalars, "\(kind), \(c) channels")
        }
    }

    /// The pooler enum picks the op.
    func testPooler() throws {
        var rng = SeededRNG(seed: 6)
        let x = Tensor.randn([1, 3, 8, 10], rng: &rng)
        let rois = makeRoIs(boxes: randomBoxes(5, extent: 120, maxSide: 80, rng: &rng))
        let aligned = try RoIPooler(kind: .roialign, outputSize: 4)(x, rois: rois)
        XCTAssertEqual(aligned.scalars, roiAlign(x, rois: rois, outputSize: (4, 4), spatialScale: 1.0 / 16).scalars)
        let pooled = try RoIPooler(kind: .roipool, outputSize: 4)(x, rois: rois)
        XCTAssertEqual(pooled.scalars, roiPool(x, rois: rois, outputSize: (4, 4), spatialScale: 1.0 / 16).scalars)
        XCTAssertEqual(RoIPoolerKind(rawValue: "roialign"), .roialign)
        XCTAssertThrowsError(try RoIPooler(kind: .roipool, outputSize: 0)) {
            XCTAssertTrue("\($0)".contains("outputSize"))
        }
    }
}

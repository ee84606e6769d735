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
        let grid = Tensor(
            (0..<n).flatMap { i -> [Float] in
                let x = Float(i % 120) * 10, y = Float(i / 120) * 10
                return [x, y, x + 9, y + 9]
            }, shape: [n, 4])
        XCTAssertEqual(nms(grid, scores: scores, iouThreshold: 0.7).count, n)
    }

    /// RoIAlign and RoIPool at the detector's C4 sizes (1024 channels, 300 RoIs, 14x14), checked value by
    /// value against brute-force implementations written from torchvision's CPU kernels: the forward output
    /// and the input gradient of a random linear loss, on every RoI and a spread of channels.
    func testRoIAlignAndRoIPoolAtC4Sizes() {
        var rng = SeededRNG(seed: 2)
        let (c, h, w, r, p) = (1024, 38, 63, 300, 14)
        let x = Tensor.uniform([1, c, h, w], -1, 1, rng: &rng, requiresGrad: true)
        let rois = makeRoIs(
            boxes: clipBoxes(
                randomBoxes(r, extent: 1000, minSide: 8, maxSide: 400, rng: &rng),
                to: (height: 600, width: 1000)))
        let weights = Tensor.uniform([r, c, p, p], -1, 1, rng: &rng)
        let channels = Array(stride(from: 0, to: c, by: 37)) + [c - 1]
        let scale: Float = 1.0 / 16
        for pool in [false, true] {
            let pooled =
                pool
                ? roiPool(x, rois: rois, outputSize: (p, p), spatialScale: scale)
                : roiAlign(x, rois: rois, outputSize: (p, p), spatialScale: scale)
            XCTAssertEqual(pooled.shape, [r, c, p, p])
            x.grad = nil
            sum(pooled * weights).backward()
            let grad = x.grad!
            var expectedGrad = [Float](repeating: 0, count: x.count)
            var worst: Float = 0, worstGrad: Float = 0
            for k in 0..<r {
                let roi = (0..<5).map { rois.data[k * 5 + $0] }
                for ch in channels {
                    let plane = x.data + ch * h * w
                    for py in 0..<p {
                        for px in 0..<p {
                            // (index, weight) taps of this bin, from the definition.
                            let taps =
                                pool
                                ? Self.roiPoolTaps(roi, scale, h, w, p, py, px, plane)
                                : Self.roiAlignTaps(roi, scale, h, w, p, py, px)
                            let value = taps.reduce(Float(0)) { $0 + $1.weight * plane[$1.index] }
                            let o = ((k * c + ch) * p + py) * p + px
                            worst = max(worst, abs(pooled.data[o] - value))
                            for t in taps { expectedGrad[ch * h * w + t.index] += t.weight * weights.data[o] }
                        }
                    }
                }
            }
            for ch in channels {
                for i in 0..<(h * w) {
                    worstGrad = max(worstGrad, abs(grad.data[ch * h * w + i] - expectedGrad[ch * h * w + i]))
                }
            }
            XCTAssertLessThan(worst, 1e-5, pool ? "roiPool forward" : "roiAlign forward")
            XCTAssertLessThan(worstGrad, 1e-3, pool ? "roiPool input gradient" : "roiAlign input gradient")
            let touched = channels.map { ch in (0..<(h * w)).filter { expectedGrad[ch * h * w + $0] != 0 }.count }
                .reduce(0, +)
            XCTAssertGreaterThan(
                touched, channels.count * h * w / 4, "the RoIs cover much of the map: the check is not vacuous")
        }
    }

    /// torchvision roi_align (aligned, adaptive sampling): the bilinear taps of bin (py, px), weights divided
    /// by the sample count.
    static func roiAlignTaps(_ roi: [Float], _ scale: Float, _ h: Int, _ w: Int, _ p: Int, _ py: Int, _ px: Int)
        -> [(index: Int, weight: Float)]
    {
        let x1 = roi[1] * scale - 0.5, y1 = roi[2] * scale - 0.5
        let rw = roi[3] * scale - 0.5 - x1, rh = roi[4] * scale - 0.5 - y1
        let bh = rh / Float(p), bw = rw / Float(p)
        let gh = Int((rh / Float(p)).rounded(.up)), gw = Int((rw / Float(p)).rounded(.up))
        let count = Float(max(gh * gw, 1))
        var taps: [(index: Int, weight: Float)] = []
        for iy in 0..<gh {
            for ix in 0..<gw {
                var y = y1 + Float(py) * bh + (Float(iy) + 0.5) * bh / Float(gh)
                var x = x1 + Float(px) * bw + (Float(ix) + 0.5) * bw / Float(gw)
                if y < -1 || y > Float(h) || x < -1 || x > Float(w) { continue }
                y = max(y, 0); x = max(x, 0)
                var yl = Int(y), xl = Int(x), yh = yl + 1, xh = xl + 1
                if yl >= h - 1 { yl = h - 1; yh = h - 1; y = Float(yl) }
                if xl >= w - 1 { xl = w - 1; xh = w - 1; x = Float(xl) }
                let ly = y - Float(yl), lx = x - Float(xl)
                taps += [
                    (yl * w + xl, (1 - ly) * (1 - lx) / count), (yl * w + xh, (1 - ly) * lx / count),
                    (yh * w + xl, ly * (1 - lx) / count), (yh * w + xh, ly * lx / count)
                ]
            }
        }
        return taps
    }

    /// torchvision roi_pool: the arg-max cell of bin (py, px) with weight 1 (none for an empty bin).
    static func roiPoolTaps(
        _ roi: [Float], _ scale: Float, _ h: Int, _ w: Int, _ p: Int, _ py: Int, _ px: Int,
        _ plane: UnsafeMutablePointer<Float>
    ) -> [(index: Int, weight: Float)] {
        let sw = Int((roi[1] * scale).rounded()), sh = Int((roi[2] * scale).rounded())
        let ew = Int((roi[3] * scale).rounded()), eh = Int((roi[4] * scale).rounded())
        let rw = Float(max(ew - sw + 1, 1)), rh = Float(max(eh - sh + 1, 1))
        let bh = rh / Float(p), bw = rw / Float(p)
        let hs = min(max(Int((Float(py) * bh).rounded(.down)) + sh, 0), h),
            he = min(max(Int((Float(py + 1) * bh).rounded(.up)) + sh, 0), h)
        let ws = min(max(Int((Float(px) * bw).rounded(.down)) + sw, 0), w),
            we = min(max(Int((Float(px + 1) * bw).rounded(.up)) + sw, 0), w)
        guard he > hs, we > ws else { return [] }
        var best = -Float.greatestFiniteMagnitude, index = -1
        for yy in hs..<he {
            for xx in ws..<we where plane[yy * w + xx] > best { best = plane[yy * w + xx]; index = yy * w + xx }
        }
        return [(index, 1)]
    }
}

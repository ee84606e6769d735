import XCTest
import TestSupport
import Engine
import NN

final class ConvTests: XCTestCase {
    override func tearDown() { Workspace.columnLimit = 1 << 23 }

    /// Forward and backward of conv2d match torch on every fixture case, also when the column workspace
    /// is forced to be tiny (chunks of output rows and of images).
    func testConvMatchesTorch() throws {
        try onEveryKernelPath { _ in
            let f = try fixture("conv2d")
            let cases = Int(f.metadata["cases"]!)!
            for limit in [1 << 23, 40, 300] {
                Workspace.columnLimit = limit
                for i in 0..<cases {
                    let p = try caseParams(f, "c\(i)")
                    let x = try f.tensor("c\(i).x"), w = try f.tensor("c\(i).w")
                    x.requiresGrad = true; w.requiresGrad = true
                    let hasBias = p["bias"] as! Bool
                    let b = hasBias ? try f.tensor("c\(i).b") : nil
                    b?.requiresGrad = true
                    let y = conv2d(
                        x, w, bias: b, stride: pair(p["stride"]), padding: pair(p["padding"]),
                        dilation: pair(p["dilation"]))
                    assertClose(y, try f.tensor("c\(i).y"), "c\(i).y (limit \(limit))")
                    y.backward(try f.tensor("c\(i).gy"))
                    assertClose(x.grad!, try f.tensor("c\(i).gx"), "c\(i).gx (limit \(limit))")
                    assertClose(w.grad!, try f.tensor("c\(i).gw"), "c\(i).gw (limit \(limit))")
                    if let b { assertClose(b.grad!, try f.tensor("c\(i).gb"), "c\(i).gb (limit \(limit))") }
                }
            }
        }
    }

    /// conv2d forward, input and weight gradients against brute-force loops on random geometries: kernels
    /// 1..5 (square and not), strides, paddings (including "same" widths, which take the block-copy im2col,
    /// and paddings beyond the kernel's reach), dilation, column limits small enough to force chunks of images
    /// and of output rows, on one thread and on two (where batches of 4+ take the image-parallel path, whose
    /// stride-1 input gradient is the convolution of gy with the flipped kernel). On every kernel path.
    func testConvAgainstBruteForceRandomGeometries() {
        onEveryKernelPath { _ in
            var rng = SeededRNG(seed: 31)
            var cases = 0
            while cases < 40 {
                var kh = 1 + rng.int(below: 5), kw = 1 + rng.int(below: 5), dh = 1 + rng.int(below: 2),
                    dw = 1 + rng.int(below: 2)
                if cases % 8 == 1 { (kh, kw, dh, dw) = (3, 3, 1, 1) }  // the 3x3 / pad 1 case has its own im2col
                var sh = cases % 2 == 0 ? 1 : 1 + rng.int(below: 3), sw = cases % 2 == 0 ? 1 : 1 + rng.int(below: 3)
                if cases % 8 == 1 { (sh, sw) = (1, 1) }
                let ph = cases % 3 != 2 ? dh * (kh - 1) / 2 : rng.int(below: 3),
                    pw = cases % 3 != 2 ? dw * (kw - 1) / 2 : rng.int(below: 3)
                // Every fourth case has a batch large enough for the image-parallel path (n >= 2 x threads).
                let n = cases % 4 == 1 ? 4 + rng.int(below: 3) : 1 + rng.int(below: 3)
                let c = 1 + rng.int(below: 4), o = 1 + rng.int(below: 5)
                // Every fifth case is wide (12..44 columns), so that the 8- and 16-lane row copies of the
                // strided im2col / col2im run their vector bodies, not only their tails.
                let h = 1 + rng.int(below: 11), w = cases % 5 == 3 ? 12 + rng.int(below: 33) : 1 + rng.int(below: 11)
                let oh = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1, ow = (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1
                guard h + 2 * ph - dh * (kh - 1) - 1 >= 0, w + 2 * pw - dw * (kw - 1) - 1 >= 0 else { continue }
                cases += 1
                let x = Tensor.randn([n, c, h, w], rng: &rng), wt = Tensor.randn([o, c, kh, kw], rng: &rng)
                let gy = Tensor.randn([n, o, oh, ow], rng: &rng)
                // Output, input gradient (for the random output gradient gy) and weight gradient by brute force: one
                // pass over every (image, output channel, output position, input channel, kernel offset) that
                // reads the input, accumulated in Double.
                var yAcc = [Double](repeating: 0, count: n * o * oh * ow),
                    gxAcc = [Double](repeating: 0, count: n * c * h * w)
                var gwAcc = [Double](repeating: 0, count: o * c * kh * kw)
                for b in 0..<n {
                    for oc in 0..<o {
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                let yi = ((b * o + oc) * oh + oy) * ow + ox
                                let gv = Double(gy.data[yi])
                                for ic in 0..<c {
                                    for i in 0..<kh {
                                        for j in 0..<kw {
                                            let iy = oy * sh - ph + i * dh, ix = ox * sw - pw + j * dw
                                            guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                                            let xi = ((b * c + ic) * h + iy) * w + ix,
                                                wi = ((oc * c + ic) * kh + i) * kw + j
                                            let xv = Double(x.data[xi]), wv = Double(wt.data[wi])
                                            yAcc[yi] += xv * wv
                                            gxAcc[xi] += gv * wv
                                            gwAcc[wi] += gv * xv
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                let ref = Tensor(yAcc.map(Float.init), shape: [n, o, oh, ow])
                let gxRef = Tensor(gxAcc.map(Float.init), shape: [n, c, h, w])
                let gwRef = Tensor(gwAcc.map(Float.init), shape: [o, c, kh, kw])
                let saved = Threading.threads
                defer { Threading.threads = saved }
                for threads in [1, 2] {
                    Threading.threads = threads
                    for limit in [1 << 23, c * kh * kw * oh * ow, max(1, c * kh * kw * ow)] {
                        Workspace.columnLimit = limit
                        let what =
                            "case \(cases): \(n)x\(c)x\(h)x\(w)->\(o) k\(kh)x\(kw) s\(sh)x\(sw) "
                            + "p\(ph)x\(pw) d\(dh)x\(dw) limit \(limit) threads \(threads)"
                        x.grad = nil; x.requiresGrad = true
                        wt.grad = nil; wt.requiresGrad = true
                        let y = conv2d(x, wt, stride: (sh, sw), padding: (ph, pw), dilation: (dh, dw))
                        assertClose(y, ref, what)
                        y.backward(gy)
                        assertClose(x.grad!, gxRef, what + " gx")
                        assertClose(wt.grad!, gwRef, what + " gw")
                    }
                }
            }
        }
    }

    /// The direct-GEMM path for 1x1 stride-1 layers on large maps agrees with a brute-force convolution.
    func testPointwiseDirectPathAgainstBruteForce() {
        onEveryKernelPath { _ in
            var rng = SeededRNG(seed: 3)
            let x = Tensor.randn([2, 5, 9, 10], rng: &rng), w = Tensor.randn([7, 5, 1, 1], rng: &rng)
            let b = Tensor.randn([7], rng: &rng)
            let y = conv2d(x, w, bias: b)
            let ref = Tensor(zeros: [2, 7, 9, 10])
            for n in 0..<2 {
                for o in 0..<7 {
                    for p in 0..<90 {
                        var s = Double(b.data[o])
                        for c in 0..<5 { s += Double(w.data[o * 5 + c]) * Double(x.data[(n * 5 + c) * 90 + p]) }
                        ref.data[(n * 7 + o) * 90 + p] = Float(s)
                    }
                }
            }
            assertClose(y, ref, "pointwise conv")
            for t in [x, w, b] { t.requiresGrad = true }
            gradCheck([x, w, b]) { conv2d($0[0], $0[1], bias: $0[2]) }
        }
    }

    /// The image-parallel path (batches of small images, one single-threaded GEMM per image) agrees with
    /// the single-threaded path, forward and backward, for 3x3, strided and 1x1 layers.
    func testImageParallelPathMatchesSerial() {
        onEveryKernelPath { _ in
            let saved = Threading.threads
            defer { Threading.threads = saved }
            var rng = SeededRNG(seed: 21)
            for (c, o, k, s, p, hw) in [(3, 8, 3, 1, 1, 10), (4, 6, 3, 2, 1, 9), (8, 5, 1, 1, 0, 5), (6, 4, 1, 2, 0, 7)]
            {
                let x = Tensor.randn([7, c, hw, hw], rng: &rng, requiresGrad: true)
                let w = Tensor.randn([o, c, k, k], rng: &rng, requiresGrad: true)
                let gy = Tensor.randn([7, o, (hw + 2 * p - k) / s + 1, (hw + 2 * p - k) / s + 1], rng: &rng)
                var outs: [(Tensor, Tensor, Tensor)] = []
                for threads in [1, 3] {
                    Threading.threads = threads
                    x.grad = nil; w.grad = nil
                    let y = conv2d(x, w, stride: (s, s), padding: (p, p))
                    y.backward(gy)
                    outs.append((y, x.grad!, w.grad!))
                }
                assertClose(outs[1].0, outs[0].0, "y k\(k) s\(s)")
                assertClose(outs[1].1, outs[0].1, "gx k\(k) s\(s)")
                assertClose(outs[1].2, outs[0].2, "gw k\(k) s\(s)")
                Threading.threads = 2
                gradCheck([x, w]) { conv2d($0[0], $0[1], stride: (s, s), padding: (p, p)) }
            }
        }
    }

    func testConvGradCheck() {
        var rng = SeededRNG(seed: 11)
        let x = Tensor.randn([2, 3, 7, 6], rng: &rng, requiresGrad: true)
        let w = Tensor.randn([4, 3, 3, 3], std: 0.5, rng: &rng, requiresGrad: true)
        let b = Tensor.randn([4], rng: &rng, requiresGrad: true)
        gradCheck([x, w, b]) { conv2d($0[0], $0[1], bias: $0[2], stride: (2, 1), padding: (1, 2), dilation: (1, 2)) }
    }

    /// A frozen weight gets no gradient and the input gradient is still right.
    func testFrozenWeightGetsNoGradient() {
        var rng = SeededRNG(seed: 5)
        let x = Tensor.randn([1, 2, 5, 5], rng: &rng, requiresGrad: true)
        let w = Tensor.randn([3, 2, 3, 3], rng: &rng, requiresGrad: false)
        sum(conv2d(x, w, padding: (1, 1))).backward()
        XCTAssertNil(w.grad)
        XCTAssertNotNil(x.grad)
        gradCheck([x]) { conv2d($0[0], w, padding: (1, 1)) }
    }

    func testInferenceModeRecordsNothing() {
        var rng = SeededRNG(seed: 5)
        let x = Tensor.randn([1, 2, 5, 5], rng: &rng, requiresGrad: true)
        let w = Tensor.randn([3, 2, 3, 3], rng: &rng, requiresGrad: true)
        let y = GradMode.withoutGrad { conv2d(x, w) }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(y.isLeaf)
    }
}

import XCTest
import TestSupport
import Engine
import NN

final class BatchNormTests: XCTestCase {
    func testBatchNormMatchesTorch() throws {
        try onEveryKernelPath { _ in
            let f = try fixture("batchnorm")
            for i in 0..<Int(f.metadata["cases"]!)! {
                let t = { (n: String) throws -> Tensor in try f.tensor("b\(i).\(n)") }
                // Train mode: output, gradients and updated running statistics.
                let x = try t("x"), w = try t("weight"), b = try t("bias")
                for v in [x, w, b] { v.requiresGrad = true }
                let rm = try t("running_mean_in"), rv = try t("running_var_in")
                let y = batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: true)
                assertClose(y, try t("y_train"), "b\(i) y_train")
                assertClose(rm, try t("running_mean_out"), "b\(i) running_mean")
                assertClose(rv, try t("running_var_out"), "b\(i) running_var")
                y.backward(try t("gy"))
                assertClose(x.grad!, try t("gx"), rtol: 2e-5, "b\(i) gx")
                assertClose(w.grad!, try t("gweight"), "b\(i) gweight")
                assertClose(b.grad!, try t("gbias"), "b\(i) gbias")
                // Eval mode with the incoming running statistics.
                x.grad = nil
                let ye = batchNorm2d(
                    x, weight: w, bias: b, runningMean: try t("running_mean_in"),
                    runningVar: try t("running_var_in"), training: false)
                assertClose(ye, try t("y_eval"), "b\(i) y_eval")
                ye.backward(try t("gy"))
                assertClose(x.grad!, try t("gx_eval"), "b\(i) gx_eval")
            }
        }
    }

    func testBatchNormLayerModes() throws {
        try onEveryKernelPath { _ in
            let f = try fixture("batchnorm")
            let bn = BatchNorm2d(3)
            bn.weight.copyFrom(try f.tensor("b0.weight")); bn.bias.copyFrom(try f.tensor("b0.bias"))
            bn.runningMean.copyFrom(try f.tensor("b0.running_mean_in"));
            bn.runningVar.copyFrom(try f.tensor("b0.running_var_in"))
            let x = try f.tensor("b0.x")
            assertClose(bn(x), try f.tensor("b0.y_train"), "layer train")
            XCTAssertEqual(bn.numBatchesTracked.value, 1)
            assertClose(bn.runningMean, try f.tensor("b0.running_mean_out"), "layer running mean")
            bn.eval()
            let before = bn.runningMean.copy()
            _ = bn(x)
            XCTAssertEqual(bn.runningMean.maxAbsDiff(before), 0, "eval mode must not update statistics")
            // Frozen: fixed affine even in training mode, no gradients for weight/bias.
            bn.train()
            bn.frozen = true
            let xg = x.copy(); xg.requiresGrad = true
            let y = bn(xg)
            let (s, sh) = bn.foldedAffine()
            let ref = channelAffine(x, scale: Tensor(s, shape: [3]), shift: Tensor(sh, shape: [3]))
            assertClose(y, ref, "frozen = folded affine")
            sum(y).backward()
            XCTAssertNil(bn.weight.grad)
            XCTAssertNotNil(xg.grad)
            XCTAssertEqual(bn.numBatchesTracked.value, 1)
        }
    }

    func testBatchNormGradCheck() {
        var rng = SeededRNG(seed: 2)
        let x = Tensor.randn([3, 2, 4, 3], mean: 0.5, std: 2, rng: &rng, requiresGrad: true)
        let w = Tensor.randn([2], rng: &rng, requiresGrad: true), b = Tensor.randn([2], rng: &rng, requiresGrad: true)
        let rm = Tensor(zeros: [2]), rv = Tensor(repeating: 1, shape: [2])
        gradCheck([x, w, b], eps: 5e-3) {
            batchNorm2d($0[0], weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: true)
        }
        let rm2 = Tensor([0.3, -0.2], shape: [2]), rv2 = Tensor([1.5, 0.7], shape: [2])
        gradCheck([x, w, b]) {
            batchNorm2d($0[0], weight: $0[1], bias: $0[2], runningMean: rm2, runningVar: rv2, training: false)
        }
        let s = Tensor([1.5, -0.5], shape: [2]), t = Tensor([0.1, 0.2], shape: [2])
        gradCheck([x]) { channelAffine($0[0], scale: s, shift: t) }
    }

    /// batchNorm2d(relu: true) equals relu(batchNorm2d(...)) forward and backward (train and eval), on
    /// sizes that exercise the 16-wide vector loops and their tails.
    func testBatchNormFusedReluEqualsSeparate() {
        onEveryKernelPath { _ in
            var rng = SeededRNG(seed: 12)
            for (shape, training) in [([4, 3, 5, 7], true), ([2, 5, 6, 6], false), ([3, 2, 9, 9], true)] {
                let c = shape[1]
                let x = Tensor.randn(shape, mean: 0.2, std: 1.5, rng: &rng, requiresGrad: true)
                let w = Tensor.randn([c], rng: &rng, requiresGrad: true),
                    b = Tensor.randn([c], rng: &rng, requiresGrad: true)
                let gy = Tensor.randn(shape, rng: &rng)
                func run(_ fused: Bool) -> (Tensor, [Tensor]) {
                    let rm = Tensor(zeros: [c]), rv = Tensor(repeating: 1.3, shape: [c])
                    for t in [x, w, b] { t.grad = nil }
                    let y =
                        fused
                        ? batchNorm2d(
                            x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: training, relu: true)
                        : relu(batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: training))
                    y.backward(gy)
                    return (y, [x.grad!, w.grad!, b.grad!])
                }
                let (y1, g1) = run(true), (y2, g2) = run(false)
                assertClose(y1, y2, "forward \(shape)")
                for (a, e) in zip(g1, g2) { assertClose(a, e, "gradients \(shape)") }
            }
            let x = Tensor.randn([3, 2, 4, 3], mean: 0.3, std: 2, rng: &rng, requiresGrad: true)
            let w = Tensor.randn([2], rng: &rng, requiresGrad: true),
                b = Tensor.randn([2], rng: &rng, requiresGrad: true)
            let rm = Tensor(zeros: [2]), rv = Tensor(repeating: 1, shape: [2])
            gradCheck([x, w, b], eps: 1e-3) {
                batchNorm2d(
                    $0[0], weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: true, relu: true)
            }
        }
    }
}

final class PoolTests: XCTestCase {
    func testPoolsMatchTorch() throws {
        try onEveryKernelPath { _ in
            let f = try fixture("pool")
            for (prefix, countKey) in [("m", "max_cases"), ("a", "avg_cases"), ("g", "global_cases")] {
                for i in 0..<Int(f.metadata[countKey]!)! {
                    let name = "\(prefix)\(i)"
                    let p = try caseParams(f, name)
                    let x = try f.tensor("\(name).x"); x.requiresGrad = true
                    let y: Tensor
                    switch prefix {
                    case "m":
                        y = maxPool2d(
                            x, kernel: pair(p["kernel"]), stride: pair(p["stride"]), padding: pair(p["padding"]))
                    case "a":
                        y = avgPool2d(
                            x, kernel: pair(p["kernel"]), stride: pair(p["stride"]), padding: pair(p["padding"]))
                    default: y = globalAvgPool(x)
                    }
                    assertClose(y, try f.tensor("\(name).y"), name)
                    y.backward(try f.tensor("\(name).gy"))
                    assertClose(x.grad!, try f.tensor("\(name).gx"), "\(name) gx")
                }
            }
        }
    }

    /// Max pooling against a brute-force loop on random geometries (padding up to half the kernel, as
    /// torch allows), with NaNs, which propagate.
    func testMaxPoolAgainstBruteForce() {
        onEveryKernelPath { _ in
            var rng = SeededRNG(seed: 9)
            var cases = 0
            while cases < 60 {
                let h = 1 + rng.int(below: 12), w = 1 + rng.int(below: 12)
                let kh = 1 + rng.int(below: 4), kw = 1 + rng.int(below: 4), sh = 1 + rng.int(below: 3),
                    sw = 1 + rng.int(below: 3)
                let ph = rng.int(below: kh / 2 + 1), pw = rng.int(below: kw / 2 + 1)
                guard h + 2 * ph >= kh, w + 2 * pw >= kw else { continue }
                cases += 1
                let x = Tensor.randn([2, 3, h, w], rng: &rng)
                if cases % 3 == 0 { for _ in 0..<2 { x.data[rng.int(below: x.count)] = .nan } }
                // With a tape (the argmax kernel) and without one (the values-only kernel).
                let y = maxPool2d(x, kernel: (kh, kw), stride: (sh, sw), padding: (ph, pw))
                x.requiresGrad = true
                let yt = maxPool2d(x, kernel: (kh, kw), stride: (sh, sw), padding: (ph, pw))
                XCTAssertEqual(
                    y.scalars.map { $0.isNaN ? 0 : $0.bitPattern }, yt.scalars.map { $0.isNaN ? 0 : $0.bitPattern })
                let oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1
                XCTAssertEqual(y.shape, [2, 3, oh, ow])
                for plane in 0..<6 {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            var m = -Float.infinity, nan = false
                            for i in 0..<kh {
                                for j in 0..<kw {
                                    let iy = oy * sh - ph + i, ix = ox * sw - pw + j
                                    guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                                    let v = x.data[plane * h * w + iy * w + ix]
                                    if v.isNaN { nan = true } else { m = max(m, v) }
                                }
                            }
                            let got = y.data[(plane * oh + oy) * ow + ox]
                            if nan {
                                XCTAssertTrue(got.isNaN, "case \(cases) plane \(plane) (\(oy), \(ox))")
                            } else {
                                XCTAssertEqual(
                                    got, m,
                                    "case \(cases): \(h)x\(w) k\(kh)x\(kw) s\(sh)x\(sw) p\(ph)x\(pw) at (\(oy), \(ox))")
                            }
                        }
                    }
                }
            }
        }
    }

    func testPoolGradCheck() {
        var rng = SeededRNG(seed: 4)
        let x = spreadValues([2, 2, 7, 6], rng: &rng)
        gradCheck([x], eps: 1e-2) { maxPool2d($0[0], kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
        gradCheck([x]) { avgPool2d($0[0], kernel: (3, 2), stride: (2, 1), padding: (1, 1)) }
        gradCheck([x]) { avgPool2d($0[0], kernel: (3, 3), stride: (1, 1), padding: (1, 1), countIncludePad: false) }
        gradCheck([x]) { globalAvgPool($0[0]) }
    }
}

final class LinearAndLossTests: XCTestCase {
    func testLinearMatchesTorch() throws {
        let f = try fixture("linear")
        let x = try f.tensor("x"), w = try f.tensor("w"), b = try f.tensor("b")
        for v in [x, w, b] { v.requiresGrad = true }
        let y = linear(x, w, bias: b)
        assertClose(y, try f.tensor("y"), "linear y")
        y.backward(try f.tensor("gy"))
        assertClose(x.grad!, try f.tensor("gx"), "linear gx")
        assertClose(w.grad!, try f.tensor("gw"), "linear gw")
        assertClose(b.grad!, try f.tensor("gb"), "linear gb")
        gradCheck([x, w, b]) { linear($0[0], $0[1], bias: $0[2]) }
    }

    func testLossesMatchTorch() throws {
        let f = try fixture("losses")
        for key in ["ce", "ce_ignore"] {
            let logits = try f.tensor("\(key).logits"); logits.requiresGrad = true
            let targets = try f.integers("\(key).target").map { Int($0) }
            let loss = crossEntropy(logits, targets: targets, ignoreIndex: key == "ce" ? nil : -1)
            assertClose(loss, try f.tensor("\(key).loss"), key)
            loss.backward()
            assertClose(logits.grad!, try f.tensor("\(key).glogits"), "\(key) grad")
        }
        let sx = try f.tensor("softmax.x")
        assertClose(softmax(sx), try f.tensor("softmax.y"), "softmax")
        assertClose(logSoftmax(sx), try f.tensor("log_softmax.y"), "log_softmax")

        let bl = try f.tensor("bce.logits"); bl.requiresGrad = true
        let bce = binaryCrossEntropyWithLogits(bl, targets: try f.tensor("bce.target"))
        assertClose(bce, try f.tensor("bce.loss"), "bce")
        bce.backward()
        assertClose(bl.grad!, try f.tensor("bce.glogits"), "bce grad")

        for k in 0..<Int(f.metadata["sl1_cases"]!)! {
            let beta = Float(try caseParams(f, "sl1_\(k)")["beta"] as! Double)
            let inp = try f.tensor("sl1_\(k).input"); inp.requiresGrad = true
            let l = smoothL1(inp, try f.tensor("sl1_\(k).target"), beta: beta, reduction: .sum)
            assertClose(l, try f.tensor("sl1_\(k).loss"), "smooth L1 beta \(beta)")
            l.backward()
            assertClose(inp.grad!, try f.tensor("sl1_\(k).ginput"), "smooth L1 grad beta \(beta)")
        }
    }

    func testLossGradChecks() {
        var rng = SeededRNG(seed: 9)
        let logits = Tensor.randn([5, 4], rng: &rng, requiresGrad: true)
        gradCheck([logits]) { crossEntropy($0[0], targets: [0, 3, -1, 2, 1], ignoreIndex: -1) }
        gradCheck([logits]) { softmax($0[0]) }
        gradCheck([logits]) { logSoftmax($0[0]) }
        let t = Tensor((0..<20).map { Float($0 % 2) }, shape: [5, 4])
        gradCheck([logits]) { binaryCrossEntropyWithLogits($0[0], targets: t) }
        let target = Tensor.randn([5, 4], rng: &rng, requiresGrad: true)
        for beta: Float in [0, 1.0 / 9, 1] {
            gradCheck([logits, target], eps: 1e-3) { smoothL1($0[0], $0[1], beta: beta, reduction: .mean) }
        }
    }

    func testCrossEntropyAllIgnoredIsZero() {
        let logits = Tensor([1, 2, 3, 4], shape: [2, 2], requiresGrad: true)
        let l = crossEntropy(logits, targets: [-1, -1], ignoreIndex: -1)
        XCTAssertEqual(l.item(), 0)
        l.backward()
        XCTAssertEqual(logits.grad!.scalars, [0, 0, 0, 0])
    }
}

final class ElementwiseAndShapeTests: XCTestCase {
    func testElementwiseGradChecks() {
        onEveryKernelPath { _ in
            var rng = SeededRNG(seed: 12)
            let a = spreadValues([2, 3, 4], rng: &rng), b = spreadValues([2, 3, 4], rng: &rng)
            gradCheck([a, b]) { add($0[0], $0[1]) }
            gradCheck([a, b]) { sub($0[0], $0[1]) }
            gradCheck([a, b]) { mul($0[0], $0[1]) }
            gradCheck([a]) { scale($0[0], -2.5) }
            gradCheck([a]) { addScalar($0[0], 3) }
            gradCheck([a]) { relu($0[0]) }
            gradCheck([a, b], eps: 1e-3) { addRelu($0[0], $0[1]) }
            gradCheck([a]) { sigmoid($0[0]) }
            gradCheck([a]) { sum($0[0]) }
            gradCheck([a]) { mean($0[0]) }
            gradCheck([a, b]) { weightedSum([(sum($0[0]), 0.5), (mean($0[1]), 2)]) }
            // Values: relu, addRelu and sigmoid against closed forms.
            let r = relu(a), ar = addRelu(a, b), s = sigmoid(a)
            for i in 0..<a.count {
                XCTAssertEqual(r.data[i], max(a.data[i], 0))
                XCTAssertEqual(ar.data[i], max(a.data[i] + b.data[i], 0))
                XCTAssertEqual(s.data[i], 1 / (1 + exp(-a.data[i])), accuracy: 1e-6)
            }
        }
    }

    func testShapeOps() {
        var rng = SeededRNG(seed: 13)
        let x = Tensor.randn([2, 3, 5, 4], rng: &rng, requiresGrad: true)
        let z = Tensor.randn([2, 2, 5, 4], rng: &rng, requiresGrad: true)
        gradCheck([x]) { $0[0].reshaped([6, -1]) }
        gradCheck([x, z]) { concatChannels([$0[0], $0[1]]) }
        gradCheck([x]) { padChannels($0[0], extra: 3) }
        gradCheck([x]) { subsample($0[0], stride: 2) }
        gradCheck([x]) { channelsLast($0[0]) }
        let cl = channelsLast(x)
        XCTAssertEqual(cl.shape, [2, 5, 4, 3])
        XCTAssertEqual(cl.data[((1 * 5 + 3) * 4 + 2) * 3 + 1], x.data[((1 * 3 + 1) * 5 + 3) * 4 + 2])
        let rows = Tensor.randn([5, 3], rng: &rng, requiresGrad: true)
        gradCheck([rows]) { gatherRows($0[0], [4, 0, 4, 2]) }
        gradCheck([rows]) { scatterRows($0[0], [1, 1, 0, 6, 3], rows: 7) }

        // Values against the definitions.
        let c = concatChannels([x, z])
        XCTAssertEqual(c.shape, [2, 5, 5, 4])
        XCTAssertEqual(c.data[(1 * 5 + 3) * 20 + 7], z.data[(1 * 2 + 0) * 20 + 7])
        XCTAssertEqual(c.data[(1 * 5 + 2) * 20 + 7], x.data[(1 * 3 + 2) * 20 + 7])
        let p = padChannels(x, extra: 2)
        XCTAssertEqual(p.shape, [2, 5, 5, 4])
        XCTAssertEqual(p.data[(0 * 5 + 4) * 20 + 3], 0)
        let s = subsample(x, stride: 2)  // rows/cols 0, 2, 4 and 0, 2
        XCTAssertEqual(s.shape, [2, 3, 3, 2])
        XCTAssertEqual(s.data[(1 * 3 + 1) * 6 + 2 * 2 + 1], x.data[(1 * 3 + 1) * 20 + 4 * 4 + 2])
        let g = gatherRows(rows, [2, 0])
        XCTAssertEqual(Array(g.scalars[0..<3]), Array(rows.scalars[6..<9]))
    }

    func testGradientAccumulatesAcrossBackwardCalls() {
        let w = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        sum(scale(w, 2)).backward()
        sum(scale(w, 3)).backward()
        XCTAssertEqual(w.grad!.scalars, [5, 5, 5])
        // A tensor used twice gets the sum of both paths.
        w.grad = nil
        sum(mul(w, w)).backward()
        XCTAssertEqual(w.grad!.scalars, [2, 4, 6])
    }

    func testSeededRNGIsReproducible() {
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42)
        XCTAssertEqual((0..<10).map { _ in a.next() }, (0..<10).map { _ in b.next() })
        var c = SeededRNG(seed: 1)
        let p = c.permutation(100)
        XCTAssertEqual(p.sorted(), Array(0..<100))
        var d = SeededRNG(seed: 5)
        let xs = (0..<20000).map { _ in Double(d.normal()) }
        let m = xs.reduce(0, +) / Double(xs.count)
        let v = xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count)
        XCTAssertEqual(m, 0, accuracy: 0.03)
        XCTAssertEqual(v, 1, accuracy: 0.05)
    }
}

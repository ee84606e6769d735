import XCTest
import TestSupport
import Engine
import CKernels

/// Winograd's F(4x4, 3x3) (Sources/CKernels/winograd.c): the channels-last kernel called directly and through
/// `PackedConv`, and the training convolution's output and gradients, against brute-force loops in Double, on every
/// instruction-set path. Bound: 1e-5 of the sum of the terms' magnitudes per output (the transforms' constants,
/// up to 8 and 1/24, make the rounding error several times the direct product's; measured up to 1.2e-6).
final class WinogradTests: XCTestCase {
    override func tearDown() {
        Threading.threads = ProcessInfo.processInfo.activeProcessorCount
        Winograd.enabled = nil
    }

    let bound = 1e-5

    func worstError(_ y: Tensor, _ ref: (y: [Double], magnitude: [Double], shape: [Int])) -> Double {
        XCTAssertEqual(y.shape, ref.shape)
        guard y.shape == ref.shape else { return .infinity }
        var worst = 0.0
        for i in 0..<y.count {
            worst = max(worst, abs(Double(y.data[i]) - ref.y[i]) / (ref.magnitude[i] + 1e-30))
        }
        return worst
    }

    /// ck_wino_nhwc on random shapes, whatever the policy would choose: maps of 1x1 up to several tiles with
    /// partial tiles at the right and bottom edges, channel counts below, at and past the 8-lane vectors and the
    /// 256-long reduction blocks, output channels around the 16-wide panels, with and without scale, bias,
    /// residual and ReLU; on one thread and on two (several chunks per thread in the larger cases).
    func testKernelAgainstBruteForce() {
        onEveryKernelPath { level in
            var rng = SeededRNG(seed: 41)
            for caseIndex in 0..<30 {
                let n = 1 + rng.int(below: 3)
                let h = 1 + rng.int(below: caseIndex % 5 == 0 ? 30 : 13),
                    w = 1 + rng.int(below: caseIndex % 5 == 0 ? 30 : 13)
                let c = [1, 3, 8, 13, 40, 300][caseIndex % 6], o = [1, 7, 16, 17, 33][caseIndex % 5]
                let x = ChannelsLastTests.random([n, h, w, c], &rng)
                let weight = ChannelsLastTests.random([o, c, 3, 3], &rng)
                let scale = caseIndex % 3 == 0 ? nil : (0..<o).map { _ in rng.uniform(0.5, 2) }
                let bias = caseIndex % 4 == 1 ? nil : (0..<o).map { _ in rng.uniform(-1, 1) }
                let relu = caseIndex % 2 == 1
                let residual = caseIndex % 5 < 2 ? ChannelsLastTests.random([n, h, w, o], &rng) : nil
                let ref = ChannelsLastTests.bruteForce(
                    x: x, w: weight, scale: scale, bias: bias, residual: residual, relu: relu, stride: (1, 1),
                    padding: (1, 1))
                let packed = Tensor(uninitialized: [ck_wino_packed_size(Int32(o), Int32(c))])
                if let scale {
                    scale.withUnsafeBufferPointer {
                        ck_wino_pack(weight.data, $0.baseAddress, Int32(o), Int32(c), packed.data)
                    }
                } else {
                    ck_wino_pack(weight.data, nil, Int32(o), Int32(c), packed.data)
                }
                let b = bias.map { Tensor($0, shape: [o]) }
                for threads in [1, 2] {
                    let y = Tensor(repeating: .nan, shape: [n, h, w, o])
                    let ok = ck_wino_nhwc(
                        x.data, Int32(n), Int32(h), Int32(w), Int32(c), packed.data, Int32(o),
                        b.map { UnsafePointer($0.data) }, residual.map { UnsafePointer($0.data) }, relu ? 1 : 0,
                        y.data, Int32(threads))
                    XCTAssertEqual(ok, 1)
                    XCTAssertLessThanOrEqual(
                        worstError(y, ref), bound,
                        "case \(caseIndex) (n \(n) \(h)x\(w) c \(c) o \(o), \(threads) threads, \(level))")
                }
            }
        }
    }

    /// The NCHW entry points (training's forward / input gradient, and weight gradient), which read and write each
    /// row of tiles through a channels-last patch, against the channels-last kernels on channels-last copies: the
    /// forward bit for bit (the same products), the weight gradient within 1e-6 of the terms' magnitudes (its chunks
    /// of tiles are cut at rows of tiles, so its sums over chunks group differently) and both against brute force.
    /// Maps with partial tiles at the right and bottom, rows of tiles straddling images, channels around the 8-lane
    /// vectors; one and two threads (the last case has enough tiles for the weight gradient's per-thread chunks, the
    /// others take its shared chunks).
    func testNCHWEntryPointsAgainstChannelsLast() {
        onEveryKernelPath { level in
            var rng = SeededRNG(seed: 77)
            for (n, c, o, h, w) in [
                (3, 16, 16, 32, 32), (2, 5, 9, 7, 30), (5, 17, 8, 13, 6), (1, 32, 40, 9, 9), (9, 8, 3, 4, 4),
                (2, 40, 16, 1, 13), (6, 40, 48, 20, 18),
            ] {
                let x = Tensor.randn([n, c, h, w], rng: &rng), wt = Tensor.randn([o, c, 3, 3], rng: &rng)
                let gy = Tensor.randn([n, o, h, w], rng: &rng)
                let xl = toChannelsLast(x), gyl = toChannelsLast(gy)
                let up = Tensor(uninitialized: [ck_wino_packed_size(Int32(o), Int32(c))])
                ck_wino_pack(wt.data, nil, Int32(o), Int32(c), up.data)
                let what = "\(n)x\(c)x\(h)x\(w)->\(o), \(level)"
                let refY = ChannelsLastTests.bruteForce(
                    x: xl, w: wt, scale: nil, bias: nil, residual: nil, relu: false, stride: (1, 1), padding: (1, 1))
                // Brute-force weight gradient and its magnitudes.
                var gw = [Double](repeating: 0, count: o * c * 9), gwMag = gw
                for b in 0..<n {
                    for oc in 0..<o {
                        for oy in 0..<h {
                            for ox in 0..<w {
                                let g = Double(gy.data[((b * o + oc) * h + oy) * w + ox])
                                for ic in 0..<c {
                                    for i in 0..<3 where oy - 1 + i >= 0 && oy - 1 + i < h {
                                        for j in 0..<3 where ox - 1 + j >= 0 && ox - 1 + j < w {
                                            let v = g * Double(x.data[((b * c + ic) * h + oy - 1 + i) * w + ox - 1 + j])
                                            gw[((oc * c + ic) * 3 + i) * 3 + j] += v
                                            gwMag[((oc * c + ic) * 3 + i) * 3 + j] += abs(v)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                for threads in [1, 2] {
                    let yl = Tensor(repeating: .nan, shape: [n, h, w, o])
                    XCTAssertEqual(
                        ck_wino_nhwc(
                            xl.data, Int32(n), Int32(h), Int32(w), Int32(c), up.data, Int32(o), nil, nil, 0, yl.data,
                            Int32(threads)), 1)
                    let y = Tensor(repeating: .nan, shape: [n, o, h, w])
                    XCTAssertEqual(
                        ck_wino_nchw(
                            x.data, Int32(n), Int32(h), Int32(w), Int32(c), up.data, Int32(o), y.data, Int32(threads)),
                        1)
                    XCTAssertLessThanOrEqual(worstError(yl, refY), bound, "\(what) nhwc, \(threads) threads")
                    XCTAssertEqual(toChannelsLast(y).maxAbsDiff(yl), 0, "\(what): nchw differs, \(threads) threads")
                    XCTAssertFalse((0..<y.count).contains { !y.data[$0].isFinite }, "\(what): output left unwritten")
                    let gwl = Tensor(zeros: [o, c, 3, 3]), gwc = Tensor(zeros: [o, c, 3, 3])
                    XCTAssertEqual(
                        ck_wino_weight_grad(
                            xl.data, gyl.data, Int32(n), Int32(h), Int32(w), Int32(c), Int32(o), gwl.data,
                            Int32(threads)), 1)
                    XCTAssertEqual(
                        ck_wino_weight_grad_nchw(
                            x.data, gy.data, Int32(n), Int32(h), Int32(w), Int32(c), Int32(o), gwc.data,
                            Int32(threads)), 1)
                    var worst = 0.0, apart = 0.0
                    for i in 0..<gw.count {
                        worst = max(worst, abs(Double(gwc.data[i]) - gw[i]) / (gwMag[i] + 1e-30))
                        apart = max(apart, abs(Double(gwc.data[i] - gwl.data[i])) / (gwMag[i] + 1e-30))
                    }
                    // Repeatable to the bit (training runs that are killed and resumed rely on it).
                    let again = Tensor(zeros: [o, c, 3, 3])
                    _ = ck_wino_weight_grad_nchw(
                        x.data, gy.data, Int32(n), Int32(h), Int32(w), Int32(c), Int32(o), again.data, Int32(threads))
                    XCTAssertEqual(again.maxAbsDiff(gwc), 0, "\(what) gw not repeatable, \(threads) threads")
                    XCTAssertLessThanOrEqual(worst, bound, "\(what) gw, \(threads) threads")
                    XCTAssertLessThanOrEqual(apart, 1e-6, "\(what) gw nchw vs nhwc, \(threads) threads")
                }
            }
        }
    }

    /// PackedConv takes Winograd for 3x3 stride-1 layers with enough tiles (and gives results within the bound,
    /// different from the direct kernel's, so another computation ran), the direct kernel otherwise; ReLU of NaN
    /// gives 0 on this path too.
    func testPackedConvChoosesWinograd() {
        onEveryKernelPath { level in
            Winograd.enabled = true
            var rng = SeededRNG(seed: 8)
            let x = ChannelsLastTests.random([2, 19, 23, 40], &rng)
            let weight = ChannelsLastTests.random([48, 40, 3, 3], &rng)
            let bias = (0..<48).map { _ in rng.uniform(-1, 1) }
            let conv = PackedConv(weight: weight, bias: bias, stride: (1, 1), padding: (1, 1))
            let ref = ChannelsLastTests.bruteForce(
                x: x, w: weight, scale: nil, bias: bias, residual: nil, relu: true, stride: (1, 1), padding: (1, 1))
            for threads in [1, 2] {
                Threading.threads = threads
                let y = conv(x, relu: true)
                XCTAssertLessThanOrEqual(worstError(y, ref), bound, "\(level), \(threads) threads")
                Winograd.enabled = false
                let direct = conv(x, relu: true)
                Winograd.enabled = true
                XCTAssertLessThanOrEqual(worstError(direct, ref), 1e-6, "\(level) direct")
                XCTAssertGreaterThan(y.maxAbsDiff(direct), 0, "\(level): Winograd was not taken")
            }
            let bad = Tensor(repeating: .nan, shape: [1, 16, 16, 40])
            let z = conv(bad, relu: true)
            XCTAssertTrue((0..<z.count).allSatisfy { z.data[$0] == 0 }, "\(level): ReLU of NaN must give 0")
        }
    }

    /// The training convolution (NCHW, autograd): output, input gradient (Winograd on the transposed convolution)
    /// and weight gradient (by Winograd from 128 tiles, the last case), against brute force in Double, with
    /// batches large enough for the policy (64+ tiles); with a bias, on one thread and on two, and the im2col
    /// path's within its own bound.
    func testTrainingConvolutionAgainstBruteForce() {
        onEveryKernelPath { level in
            var rng = SeededRNG(seed: 12)
            for (n, c, o, h, w) in [(4, 32, 40, 15, 13), (2, 35, 32, 22, 30), (16, 64, 32, 8, 8), (8, 32, 33, 17, 18)] {
                let x = Tensor.randn([n, c, h, w], rng: &rng), wt = Tensor.randn([o, c, 3, 3], rng: &rng)
                let bias = Tensor.randn([o], rng: &rng), gy = Tensor.randn([n, o, h, w], rng: &rng)
                var y = [Double](repeating: 0, count: n * o * h * w), yMag = y
                var gx = [Double](repeating: 0, count: n * c * h * w), gxMag = gx
                var gw = [Double](repeating: 0, count: o * c * 9), gwMag = gw
                for b in 0..<n {
                    for oc in 0..<o {
                        for oy in 0..<h {
                            for ox in 0..<w {
                                let yi = ((b * o + oc) * h + oy) * w + ox, g = Double(gy.data[yi])
                                y[yi] += Double(bias.data[oc]); yMag[yi] += abs(Double(bias.data[oc]))
                                for ic in 0..<c {
                                    for i in 0..<3 {
                                        let iy = oy - 1 + i
                                        guard iy >= 0 && iy < h else { continue }
                                        for j in 0..<3 {
                                            let ix = ox - 1 + j
                                            guard ix >= 0 && ix < w else { continue }
                                            let xi = ((b * c + ic) * h + iy) * w + ix,
                                                wi = ((oc * c + ic) * 3 + i) * 3 + j
                                            let xv = Double(x.data[xi]), wv = Double(wt.data[wi])
                                            y[yi] += xv * wv; yMag[yi] += abs(xv * wv)
                                            gx[xi] += g * wv; gxMag[xi] += abs(g * wv)
                                            gw[wi] += g * xv; gwMag[wi] += abs(g * xv)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                let what = "\(n)x\(c)x\(h)x\(w)->\(o), \(level)"
                var results: [[Tensor]] = []
                for (threads, on) in [(1, true), (2, true), (2, false)] {
                    Threading.threads = threads
                    Winograd.enabled = on
                    x.grad = nil; x.requiresGrad = true
                    wt.grad = nil; wt.requiresGrad = true
                    let out = conv2d(x, wt, bias: bias, padding: (1, 1))
                    out.backward(gy)
                    for (t, ref, mag, name) in [
                        (out, y, yMag, "y"), (x.grad!, gx, gxMag, "gx"), (wt.grad!, gw, gwMag, "gw")
                    ] {
                        var worst = 0.0
                        for i in 0..<t.count { worst = max(worst, abs(Double(t.data[i]) - ref[i]) / (mag[i] + 1e-30)) }
                        XCTAssertLessThanOrEqual(
                            worst, on ? bound : 1e-6, "\(what) \(name), \(threads) threads, winograd \(on)")
                    }
                    results.append([out, x.grad!, wt.grad!])
                }
                // Only at the levels where the policy takes it by default does "on" differ from the im2col path.
                XCTAssertGreaterThan(results[1][0].maxAbsDiff(results[2][0]), 0, "\(what): Winograd was not taken")
                XCTAssertGreaterThan(results[1][1].maxAbsDiff(results[2][1]), 0, "\(what): Winograd gx was not taken")
                if n * ((h + 3) / 4) * ((w + 3) / 4) >= 128 {
                    XCTAssertGreaterThan(
                        results[1][2].maxAbsDiff(results[2][2]), 0, "\(what): Winograd gw was not taken")
                }
            }
        }
    }
}

import XCTest
import TestSupport
import Engine
import CKernels

/// The channels-last inference convolution (Sources/CKernels/conv_nhwc.c through `PackedConv`) and the layout
/// helpers, against brute-force loops in Double written here, on every instruction-set path.
final class ChannelsLastTests: XCTestCase {
    override func tearDown() {
        Threading.threads = ProcessInfo.processInfo.activeProcessorCount
        Winograd.enabled = nil
        ck_conv_wide(-1)
    }

    /// y = act(conv(x) * scale + bias + residual) in Double, channels-last, with the bound of its rounding
    /// error: the sum of the magnitudes of every term, per output.
    static func bruteForce(
        x: Tensor, w: Tensor, scale: [Float]?, bias: [Float]?, residual: Tensor?, relu: Bool,
        stride: (Int, Int), padding: (Int, Int)
    ) -> (y: [Double], magnitude: [Double], shape: [Int]) {
        let n = x.shape[0], h = x.shape[1], wd = x.shape[2], c = x.shape[3]
        let o = w.shape[0], kh = w.shape[2], kw = w.shape[3]
        let oh = (h + 2 * padding.0 - kh) / stride.0 + 1, ow = (wd + 2 * padding.1 - kw) / stride.1 + 1
        var y = [Double](repeating: 0, count: n * oh * ow * o), mag = y
        for b in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for oc in 0..<o {
                        var s = 0.0, m = 0.0
                        for ky in 0..<kh {
                            for kx in 0..<kw {
                                let iy = oy * stride.0 - padding.0 + ky, ix = ox * stride.1 - padding.1 + kx
                                guard iy >= 0 && iy < h && ix >= 0 && ix < wd else { continue }
                                for ic in 0..<c {
                                    let t =
                                        Double(x.data[((b * h + iy) * wd + ix) * c + ic])
                                        * Double(w.data[((oc * c + ic) * kh + ky) * kw + kx])
                                    s += t; m += abs(t)
                                }
                            }
                        }
                        let sc = Double(scale?[oc] ?? 1)
                        s *= sc; m *= abs(sc)
                        let i = ((b * oh + oy) * ow + ox) * o + oc
                        if let bias { s += Double(bias[oc]); m += abs(Double(bias[oc])) }
                        if let residual { s += Double(residual.data[i]); m += abs(Double(residual.data[i])) }
                        y[i] = relu ? max(s, 0) : s
                        mag[i] = m
                    }
                }
            }
        }
        return (y, mag, [n, oh, ow, o])
    }

    static func random(_ shape: [Int], _ rng: inout SeededRNG) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = rng.uniform(-1, 1) }
        return t
    }

    /// Random geometries: kernels 1..5 (square and not), strides 1..3, paddings up to beyond the kernel's
    /// reach, channel counts that are and are not multiples of 8 and reductions longer than one 256-long block
    /// (a block boundary inside a tap's channel run), output channels around the 16-wide panels, rows past one
    /// 168-row cell; with and without scale, bias, residual and ReLU; on one thread and on two.
    func testPackedConvAgainstBruteForce() {
        Winograd.enabled = false  // the direct kernel here; WinogradTests covers the other one
        onEveryKernelPath { level in
            var rng = SeededRNG(seed: 77)
            for caseIndex in 0..<36 {
                let kh = caseIndex % 6 == 0 ? 3 : 1 + rng.int(below: 5),
                    kw = caseIndex % 6 == 0 ? 3 : 1 + rng.int(below: 5)
                let sh = 1 + rng.int(below: caseIndex % 2 == 0 ? 1 : 3),
                    sw = 1 + rng.int(below: caseIndex % 2 == 0 ? 1 : 3)
                let ph = rng.int(below: kh + 1), pw = rng.int(below: kw + 1)
                let c = [1, 3, 8, 13, 64, 97, 300][rng.int(below: 7)]
                let o = [1, 7, 16, 17, 33, 64][rng.int(below: 6)]
                let n = 1 + rng.int(below: 3)
                let h = kh + rng.int(below: caseIndex % 4 == 0 ? 14 : 6),
                    w = kw + rng.int(below: caseIndex % 4 == 0 ? 14 : 6)
                let x = Self.random([n, h, w, c], &rng), weight = Self.random([o, c, kh, kw], &rng)
                let scale = caseIndex % 3 == 0 ? nil : (0..<o).map { _ in rng.uniform(0.5, 2) }
                let bias = caseIndex % 4 == 1 ? nil : (0..<o).map { _ in rng.uniform(-1, 1) }
                let relu = caseIndex % 2 == 1
                let conv = PackedConv(weight: weight, scale: scale, bias: bias, stride: (sh, sw), padding: (ph, pw))
                let (oh, ow) = conv.outputSize(h: h, w: w)
                let residual = caseIndex % 5 < 2 ? Self.random([n, oh, ow, o], &rng) : nil
                let ref = Self.bruteForce(
                    x: x, w: weight, scale: scale, bias: bias, residual: residual, relu: relu, stride: (sh, sw),
                    padding: (ph, pw))
                for threads in [1, 2] {
                    Threading.threads = threads
                    let y = conv(x, residual: residual, relu: relu)
                    XCTAssertEqual(y.shape, ref.shape, "case \(caseIndex)")
                    guard y.shape == ref.shape else { continue }
                    var worst = 0.0
                    for i in 0..<y.count {
                        let err = abs(Double(y.data[i]) - ref.y[i]) / (ref.magnitude[i] * 1e-6 + 1e-30)
                        worst = max(worst, err)
                    }
                    XCTAssertLessThanOrEqual(
                        worst, 1,
                        "case \(caseIndex) (k \(kh)x\(kw) s \(sh),\(sw) p \(ph),\(pw) n \(n) c \(c) o \(o) "
                            + "\(h)x\(w), \(threads) threads, \(level)): error above 1e-6 of the terms' magnitude")
                }
            }
        }
    }

    /// A product with many rows and a long reduction (several cells per thread, several k blocks), and the ReLU
    /// of NaN (0, as the reference path's ReLU gives).
    func testPackedConvLargeAndNaN() {
        Winograd.enabled = false
        onEveryKernelPath { level in
            var rng = SeededRNG(seed: 5)
            let x = Self.random([2, 19, 23, 40], &rng), weight = Self.random([48, 40, 3, 3], &rng)
            let conv = PackedConv(weight: weight, stride: (1, 1), padding: (1, 1))
            let ref = Self.bruteForce(
                x: x, w: weight, scale: nil, bias: nil, residual: nil, relu: false, stride: (1, 1), padding: (1, 1))
            let y = conv(x, relu: false)
            for i in 0..<y.count {
                XCTAssertLessThanOrEqual(abs(Double(y.data[i]) - ref.y[i]), ref.magnitude[i] * 1e-6, "\(level) at \(i)")
            }
            // A 7x7/2 stem on 3 channels: A's runs span whole kernel rows where every row of a panel is inside.
            let image = Self.random([1, 29, 37, 3], &rng), stemWeight = Self.random([16, 3, 7, 7], &rng)
            let stem = PackedConv(weight: stemWeight, stride: (2, 2), padding: (3, 3))
            let stemRef = Self.bruteForce(
                x: image, w: stemWeight, scale: nil, bias: nil, residual: nil, relu: false, stride: (2, 2),
                padding: (3, 3))
            let s = stem(image, relu: false)
            for i in 0..<s.count {
                XCTAssertLessThanOrEqual(
                    abs(Double(s.data[i]) - stemRef.y[i]), stemRef.magnitude[i] * 1e-6, "\(level) stem at \(i)")
            }
            let bad = Tensor(repeating: .nan, shape: [1, 3, 3, 40])
            let z = conv(bad, relu: true)
            XCTAssertTrue((0..<z.count).allSatisfy { z.data[$0] == 0 }, "\(level): ReLU of NaN must give 0")
        }
    }

    /// The 6 x 32 micro-kernel (two 16-column panels at once; the AVX-512 level's) gives the same bits as the
    /// 6 x 16 AVX2 one on every shape: odd and even panel counts, a partial last panel, reductions over several
    /// 256-long blocks (accumulation into the output), bias, residual, ReLU, NaN inputs, 1 and 2 threads, direct
    /// and Winograd. Its body compiled for AVX2 (ck_conv_wide(1)) runs here on any AVX2 CPU; on an AVX-512 CPU the
    /// AVX-512 build is compared too, and both against brute force.
    func testWideKernelEqualsNarrowBitForBit() throws {
        guard InstructionSet.supported >= .avx2 else { throw XCTSkip("no AVX2: only the portable kernel runs") }
        let saved = InstructionSet.active
        defer { InstructionSet.limit(to: saved) }
        var rng = SeededRNG(seed: 321)
        let shapes: [(n: Int, h: Int, w: Int, c: Int, o: Int, k: Int)] = [
            (1, 5, 7, 3, 1, 3), (2, 9, 6, 13, 17, 3), (1, 8, 8, 300, 33, 1), (1, 11, 13, 40, 48, 3),
            (2, 7, 5, 64, 64, 1), (1, 6, 9, 97, 100, 3), (1, 14, 14, 32, 16, 3), (1, 3, 4, 520, 31, 1),
            (1, 20, 18, 64, 80, 3)
        ]
        for (index, s) in shapes.enumerated() {
            let x = Self.random([s.n, s.h, s.w, s.c], &rng), weight = Self.random([s.o, s.c, s.k, s.k], &rng)
            if index == 3 { x.data[5] = .nan }
            let scale = (0..<s.o).map { _ in rng.uniform(0.5, 2) }, bias = (0..<s.o).map { _ in rng.uniform(-1, 1) }
            let pad = s.k / 2
            let conv = PackedConv(weight: weight, scale: scale, bias: bias, stride: (1, 1), padding: (pad, pad))
            let residual = index % 2 == 0 ? Self.random([s.n, s.h, s.w, s.o], &rng) : nil
            let ref = Self.bruteForce(
                x: x, w: weight, scale: scale, bias: bias, residual: residual, relu: true, stride: (1, 1),
                padding: (pad, pad))
            for winograd in [false, true] {
                Winograd.enabled = winograd
                for threads in [1, 2] {
                    Threading.threads = threads
                    InstructionSet.limit(to: .avx2)
                    ck_conv_wide(0)
                    let narrow = conv(x, residual: residual, relu: true)
                    ck_conv_wide(1)
                    var outputs = [("6x32 built for AVX2", conv(x, residual: residual, relu: true))]
                    if InstructionSet.supported >= .avx512 {
                        InstructionSet.limit(to: .avx512)
                        ck_conv_wide(-1)
                        outputs.append(("6x32 built for AVX-512", conv(x, residual: residual, relu: true)))
                        ck_conv_wide(0)
                        outputs.append(("6x16 at AVX-512", conv(x, residual: residual, relu: true)))
                    }
                    let what = "shape \(index) \(s), winograd \(winograd), \(threads) threads"
                    for (name, y) in outputs {
                        XCTAssertEqual(y.shape, narrow.shape, what)
                        let differing = (0..<y.count).filter { y.data[$0].bitPattern != narrow.data[$0].bitPattern }
                        XCTAssertTrue(differing.isEmpty, "\(name), \(what): \(differing.count) outputs differ")
                    }
                    // And the shared result is right (Winograd's bound is looser: see WinogradTests). Outputs whose
                    // window holds the NaN input (a NaN term in the reference) must be the ReLU of NaN, 0.
                    let bound = winograd ? 1e-5 : 1e-6
                    var worst = 0.0, nanOutputs = 0
                    for i in 0..<narrow.count {
                        if ref.magnitude[i].isNaN {
                            nanOutputs += 1
                            XCTAssertEqual(narrow.data[i], 0, "\(what): ReLU of NaN at \(i)")
                        } else {
                            let err = abs(Double(narrow.data[i]) - ref.y[i]) / (ref.magnitude[i] * bound + 1e-30)
                            worst = max(worst, err)
                        }
                    }
                    XCTAssertLessThanOrEqual(worst, 1, what)
                    XCTAssertEqual(nanOutputs, index == 3 ? 4 * s.o : 0, what)  // the 2x2 outputs around (0, 0)
                }
            }
        }
    }

    /// The layout changes move every element to its index formula, and back exactly; the channels-last global
    /// average pool equals the channels-first one.
    func testLayoutChangesAndPooling() {
        onEveryKernelPath { level in
            var rng = SeededRNG(seed: 9)
            for (n, c, h, w) in [(1, 1, 1, 1), (2, 3, 5, 7), (1, 70, 9, 13), (3, 16, 8, 8), (1, 129, 1, 67)] {
                let x = Self.random([n, c, h, w], &rng)
                let y = toChannelsLast(x)
                XCTAssertEqual(y.shape, [n, h, w, c])
                var same = true
                for b in 0..<n {
                    for ch in 0..<c {
                        for p in 0..<(h * w) where y.data[(b * h * w + p) * c + ch] != x.data[(b * c + ch) * h * w + p]
                        {
                            same = false
                        }
                    }
                }
                XCTAssertTrue(same, "\(level): toChannelsLast \([n, c, h, w])")
                XCTAssertEqual(toChannelsFirst(y).scalars, x.scalars, "\(level): round trip \([n, c, h, w])")
                assertClose(globalAvgPoolChannelsLast(y), globalAvgPool(x), "\(level): average pool \([n, c, h, w])")
                // Max pooling: the 3x3/2 stem pool, a 2x2 one and a 3x3/3 one with padding; NaNs win as in maxPool2d.
                if c > 1 { x.data[3] = .nan; y.data[3 * c] = .nan }
                for (k, st, p) in [(3, 2, 1), (2, 1, 0), (3, 3, 1)] where h + 2 * p >= k && w + 2 * p >= k {
                    let a = toChannelsFirst(
                        maxPool2dChannelsLast(toChannelsLast(x), kernel: (k, k), stride: (st, st), padding: (p, p)))
                    let b = GradMode.withoutGrad { maxPool2d(x, kernel: (k, k), stride: (st, st), padding: (p, p)) }
                    XCTAssertEqual(a.shape, b.shape)
                    XCTAssertEqual(
                        a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern), "\(level): max pool \(k)/\(st)/\(p)")
                }
            }
        }
    }
}

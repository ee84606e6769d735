import Foundation

import CKernels

/// Batch-norm, pooling kernels over raw NCHW float buffers. Each parallel loop owns disjoint outputs; the
/// per-plane loops are C kernels (`Sources/CKernels/vec.c`) with AVX-512, AVX2 and baseline variants chosen at
/// run time (`InstructionSet`), since Swift code here is compiled for the baseline instruction set only.
enum NormKernels {
    /// Per-channel mean and biased variance of x: (N, C, HW), computed in Double for accuracy.
    static func channelStats(
        _ x: UnsafePointer<Float>, n: Int, c: Int, hw: Int,
        mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>
    ) {
        let m = Double(n * hw)
        Threading.parallelFor(c) { ch in
            var s: Double = 0
            for b in 0..<n {
                let p = x + (b * c + ch) * hw
                s += Double(ck_sum(p, hw))
            }
            let mu = s / m
            var v: Double = 0
            let muf = Float(mu)
            for b in 0..<n {
                let p = x + (b * c + ch) * hw
                v += Double(ck_sum_sqdev(p, hw, muf))
            }
            mean[ch] = muf
            variance[ch] = Float(v / m)
        }
    }

    /// Per-channel sum and sum of squares of x: (N, C, HW), in Double (sums[ch], sums[c + ch]).
    static func channelSums(_ x: UnsafePointer<Float>, n: Int, c: Int, hw: Int, sums: UnsafeMutablePointer<Double>) {
        Threading.parallelFor(c) { ch in
            var s: Double = 0, q: Double = 0
            for b in 0..<n {
                let p = x + (b * c + ch) * hw
                s += Double(ck_sum(p, hw))
                q += Double(ck_sum_sqdev(p, hw, 0))
            }
            sums[ch] = s
            sums[c + ch] = q
        }
    }

    /// y = x * scale[c] + shift[c]
    static func affine(
        _ x: UnsafePointer<Float>, n: Int, c: Int, hw: Int, scale: UnsafePointer<Float>,
        shift: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, relu: Bool = false
    ) {
        Threading.parallelFor(n * c, minPerThread: 8) { idx in
            let ch = idx % c
            let a = scale[ch], b = shift[ch]
            ck_affine(x + idx * hw, y + idx * hw, hw, a, b, relu ? 1 : 0)
        }
    }

    /// Per-channel sums of gy and of gy * (x - mean) * invstd.
    /// With `reluOutput` (the output y of a batch norm fused with a ReLU), gy counts only where y > 0.
    static func gradSums(
        _ x: UnsafePointer<Float>, _ gy: UnsafePointer<Float>, n: Int, c: Int, hw: Int,
        mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>,
        sumGy: UnsafeMutablePointer<Float>, sumGyXhat: UnsafeMutablePointer<Float>,
        reluOutput: UnsafePointer<Float>? = nil
    ) {
        Threading.parallelFor(c) { ch in
            var s1: Double = 0, s2: Double = 0
            let mu = mean[ch]
            var pair: (Float, Float) = (0, 0)
            for b in 0..<n {
                let off = (b * c + ch) * hw
                withUnsafeMutableBytes(of: &pair) { out in
                    ck_sum_dot(
                        gy + off, reluOutput.map { $0 + off }, x + off, hw, mu,
                        out.baseAddress!.assumingMemoryBound(to: Float.self))
                }
                s1 += Double(pair.0); s2 += Double(pair.1)
            }
            sumGy[ch] = Float(s1)
            sumGyXhat[ch] = Float(s2) * invstd[ch]
        }
    }
}

enum PoolKernels {
    /// Max pooling with -inf padding; records the flat input index (within the plane) of each maximum.
    static func maxForward(
        _ x: UnsafePointer<Float>, _ g: ConvGeometry, _ y: UnsafeMutablePointer<Float>,
        _ arg: UnsafeMutablePointer<Int32>
    ) {
        let oh = g.oh, ow = g.ow, hw = g.h * g.w
        // Output columns whose windows lie inside the input horizontally (no bounds checks there).
        let oxLo = min(ow, max(0, (g.pw + g.sw - 1) / g.sw))
        let oxHi = max(
            oxLo, min(ow, g.w - 1 + g.pw - (g.kw - 1) * g.dw >= 0 ? (g.w - 1 + g.pw - (g.kw - 1) * g.dw) / g.sw + 1 : 0)
        )
        Threading.parallelFor(g.n * g.c, minPerThread: 4) { plane in
            let src = x + plane * hw
            let dst = y + plane * oh * ow, a = arg + plane * oh * ow
            for oy in 0..<oh {
                let y0 = oy * g.sh - g.ph
                // Window rows inside the input (at least one unless the padding exceeds the kernel).
                var iLo = 0, iHi = g.kh
                while iLo < g.kh && y0 + iLo * g.dh < 0 { iLo += 1 }
                while iHi > iLo && y0 + (iHi - 1) * g.dh >= g.h { iHi -= 1 }
                @inline(__always) func general(_ ox: Int) {
                    let x0 = ox * g.sw - g.pw
                    var best = -Float.infinity
                    var bi: Int32 = -1
                    for i in iLo..<iHi {
                        let iy = y0 + i * g.dh
                        for j in 0..<g.kw {
                            let ix = x0 + j * g.dw
                            if ix < 0 || ix >= g.w { continue }
                            let v = src[iy * g.w + ix]
                            if v > best || bi < 0 || v.isNaN { best = v; bi = Int32(iy * g.w + ix) }
                        }
                    }
                    dst[oy * ow + ox] = bi < 0 ? 0 : best
                    a[oy * ow + ox] = bi
                }
                if iLo == iHi {
                    for ox in 0..<ow { dst[oy * ow + ox] = 0; a[oy * ow + ox] = -1 }
                    continue
                }
                for ox in 0..<oxLo { general(ox) }
                for ox in oxLo..<oxHi {
                    // Same order and NaN rule as the general case, without bounds checks.
                    let x0 = ox * g.sw - g.pw
                    var bi = (y0 + iLo * g.dh) * g.w + x0
                    var best = src[bi]
                    for i in iLo..<iHi {
                        let row = (y0 + i * g.dh) * g.w + x0
                        for j in 0..<g.kw {
                            let idx = row + j * g.dw
                            let v = src[idx]
                            if v > best || v.isNaN { best = v; bi = idx }
                        }
                    }
                    dst[oy * ow + ox] = best
                    a[oy * ow + ox] = Int32(bi)
                }
                for ox in oxHi..<ow { general(ox) }
            }
        }
    }

    /// Max pooling values only (inference: no argmax): per output row, the elementwise max of the window's
    /// input rows (a contiguous, vectorisable pass), then the max over each window's columns. NaN wins.
    static func maxForwardValues(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ y: UnsafeMutablePointer<Float>) {
        let oh = g.oh, ow = g.ow, hw = g.h * g.w, w = g.w
        @inline(__always) func nanMax(_ a: Float, _ b: Float) -> Float { (b > a || b.isNaN) && !a.isNaN ? b : a }
        Threading.parallelFor(g.n * g.c, minPerThread: 4) { plane in
            let src = x + plane * hw, dst = y + plane * oh * ow
            let m = UnsafeMutablePointer<Float>.allocate(capacity: max(w, 1))
            defer { m.deallocate() }
            for oy in 0..<oh {
                let y0 = oy * g.sh - g.ph
                var iLo = 0, iHi = g.kh
                while iLo < g.kh && y0 + iLo * g.dh < 0 { iLo += 1 }
                while iHi > iLo && y0 + (iHi - 1) * g.dh >= g.h { iHi -= 1 }
                if iLo == iHi { (dst + oy * ow).update(repeating: 0, count: ow); continue }
                m.update(from: src + (y0 + iLo * g.dh) * w, count: w)
                for i in (iLo + 1)..<max(iLo + 1, iHi) { ck_max_rows(m, src + (y0 + i * g.dh) * w, w) }
                for ox in 0..<ow {
                    let x0 = ox * g.sw - g.pw
                    var best = -Float.infinity, any = false
                    for j in 0..<g.kw {
                        let ix = x0 + j * g.dw
                        if ix < 0 || ix >= w { continue }
                        best = any ? nanMax(best, m[ix]) : m[ix]; any = true
                    }
                    dst[oy * ow + ox] = any ? best : 0
                }
            }
        }
    }

    static func maxBackward(
        _ gy: UnsafePointer<Float>, _ arg: UnsafePointer<Int32>, _ g: ConvGeometry,
        _ gx: UnsafeMutablePointer<Float>
    ) {
        let ohw = g.oh * g.ow, hw = g.h * g.w
        Threading.parallelFor(g.n * g.c, minPerThread: 4) { plane in
            let d = gx + plane * hw, s = gy + plane * ohw, a = arg + plane * ohw
            for k in 0..<ohw where a[k] >= 0 { d[Int(a[k])] += s[k] }
        }
    }

    /// Window bounds and divisor exactly as torch's avg_pool2d (count_include_pad = true by default).
    @inline(__always)
    static func avgWindow(_ o: Int, stride: Int, pad: Int, k: Int, size: Int) -> (lo: Int, hi: Int, span: Int) {
        let start = o * stride - pad
        let end = min(start + k, size + pad)
        let span = end - start
        return (max(start, 0), min(end, size), span)
    }

    static func avgForward(
        _ x: UnsafePointer<Float>, _ g: ConvGeometry, countIncludePad: Bool,
        _ y: UnsafeMutablePointer<Float>
    ) {
        let oh = g.oh, ow = g.ow, hw = g.h * g.w
        Threading.parallelFor(g.n * g.c, minPerThread: 4) { plane in
            let src = x + plane * hw, dst = y + plane * oh * ow
            for oy in 0..<oh {
                let (ylo, yhi, yspan) = avgWindow(oy, stride: g.sh, pad: g.ph, k: g.kh, size: g.h)
                for ox in 0..<ow {
                    let (xlo, xhi, xspan) = avgWindow(ox, stride: g.sw, pad: g.pw, k: g.kw, size: g.w)
                    var s: Float = 0
                    if ylo < yhi && xlo < xhi {
                        for iy in ylo..<yhi { for ix in xlo..<xhi { s += src[iy * g.w + ix] } }
                    }
                    let div = countIncludePad ? yspan * xspan : (yhi - ylo) * (xhi - xlo)
                    dst[oy * ow + ox] = div > 0 ? s / Float(div) : 0
                }
            }
        }
    }

    static func avgBackward(
        _ gy: UnsafePointer<Float>, _ g: ConvGeometry, countIncludePad: Bool,
        _ gx: UnsafeMutablePointer<Float>
    ) {
        let oh = g.oh, ow = g.ow, hw = g.h * g.w
        Threading.parallelFor(g.n * g.c, minPerThread: 4) { plane in
            let src = gy + plane * oh * ow, dst = gx + plane * hw
            for oy in 0..<oh {
                let (ylo, yhi, yspan) = avgWindow(oy, stride: g.sh, pad: g.ph, k: g.kh, size: g.h)
                for ox in 0..<ow {
                    let (xlo, xhi, xspan) = avgWindow(ox, stride: g.sw, pad: g.pw, k: g.kw, size: g.w)
                    let div = countIncludePad ? yspan * xspan : (yhi - ylo) * (xhi - xlo)
                    if div <= 0 || ylo >= yhi || xlo >= xhi { continue }
                    let v = src[oy * ow + ox] / Float(div)
                    for iy in ylo..<yhi { for ix in xlo..<xhi { dst[iy * g.w + ix] += v } }
                }
            }
        }
    }
}

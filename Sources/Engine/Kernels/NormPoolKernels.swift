import Foundation

/// Batch-norm, pooling kernels over raw NCHW float buffers. Each parallel loop owns disjoint outputs.
/// Float reductions in 16-wide vectors with two accumulators (multiply then add: `addProduct` becomes a
/// libm `fmaf` call per lane when the Swift target has no FMA) (a scalar `acc += x` loop is one add per
/// FMA latency: the compiler may not reorder float sums).
enum VecSum {
    typealias V = SIMD16<Float>
    @inline(__always) static func load(_ p: UnsafePointer<Float>, _ k: Int) -> V {
        UnsafeRawPointer(p + k).loadUnaligned(as: V.self)
    }

    /// sum of p[0..<n]
    @inline(__always) static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var a = V(), b = V(), k = 0
        while k + 32 <= n { a += load(p, k); b += load(p, k + 16); k += 32 }
        if k + 16 <= n { a += load(p, k); k += 16 }
        var t = (a + b).sum()
        while k < n { t += p[k]; k += 1 }
        return t
    }

    /// sum of (p[k] - mu)^2
    @inline(__always) static func sumSquaredDeviation(_ p: UnsafePointer<Float>, _ n: Int, _ mu: Float) -> Float {
        var a = V(), b = V(), k = 0
        let m = V(repeating: mu)
        while k + 32 <= n { let d = load(p, k) - m, e = load(p, k + 16) - m; a += d * d; b += e * e; k += 32 }
        if k + 16 <= n { let d = load(p, k) - m; a += d * d; k += 16 }
        var t = (a + b).sum()
        while k < n { let d = p[k] - mu; t += d * d; k += 1 }
        return t
    }

    /// (sum of g'[k], sum of g'[k] * (p[k] - mu)) with g'[k] = g[k] where y[k] > 0, else 0 (the gradient
    /// through a ReLU whose output is y).
    @inline(__always) static func maskedSumAndDot(
        _ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ p: UnsafePointer<Float>,
        _ n: Int, _ mu: Float
    ) -> (Float, Float) {
        var s = V(), d = V(), k = 0
        let m = V(repeating: mu), zero = V()
        while k + 16 <= n {
            let g0 = load(g, k).replacing(with: 0, where: load(y, k) .<= zero)
            s += g0; d += g0 * (load(p, k) - m)
            k += 16
        }
        var ts = s.sum(), td = d.sum()
        while k < n { let gg = y[k] > 0 ? g[k] : 0; ts += gg; td += gg * (p[k] - mu); k += 1 }
        return (ts, td)
    }

    /// (sum of g[k], sum of g[k] * (p[k] - mu))
    @inline(__always) static func sumAndDot(_ g: UnsafePointer<Float>, _ p: UnsafePointer<Float>, _ n: Int, _ mu: Float)
        -> (Float, Float)
    {
        var s = V(), d = V(), s2 = V(), d2 = V(), k = 0
        let m = V(repeating: mu)
        while k + 32 <= n {
            let g0 = load(g, k), g1 = load(g, k + 16)
            s += g0; s2 += g1
            d += g0 * (load(p, k) - m); d2 += g1 * (load(p, k + 16) - m)
            k += 32
        }
        if k + 16 <= n { let g0 = load(g, k); s += g0; d += g0 * (load(p, k) - m); k += 16 }
        var ts = (s + s2).sum(), td = (d + d2).sum()
        while k < n { ts += g[k]; td += g[k] * (p[k] - mu); k += 1 }
        return (ts, td)
    }
}

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
                s += Double(VecSum.sum(p, hw))
            }
            let mu = s / m
            var v: Double = 0
            let muf = Float(mu)
            for b in 0..<n {
                let p = x + (b * c + ch) * hw
                v += Double(VecSum.sumSquaredDeviation(p, hw, muf))
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
                s += Double(VecSum.sum(p, hw))
                q += Double(VecSum.sumSquaredDeviation(p, hw, 0))
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
            let p = x + idx * hw, q = y + idx * hw
            if relu {
                for k in 0..<hw { let v = p[k] * a + b; q[k] = v > 0 ? v : 0 }
            } else {
                for k in 0..<hw { q[k] = p[k] * a + b }
            }
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
            for b in 0..<n {
                let p = x + (b * c + ch) * hw, g = gy + (b * c + ch) * hw
                let (a1, a2) =
                    reluOutput.map { VecSum.maskedSumAndDot(g, $0 + (b * c + ch) * hw, p, hw, mu) }
                    ?? VecSum.sumAndDot(g, p, hw, mu)
                s1 += Double(a1); s2 += Double(a2)
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
                for i in (iLo + 1)..<max(iLo + 1, iHi) {
                    let row = src + (y0 + i * g.dh) * w
                    for k in 0..<w { m[k] = nanMax(m[k], row[k]) }
                }
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

import CKernels
import Foundation

/// Geometry of a 2-D convolution (or of the sliding windows of a pooling layer).
public struct ConvGeometry: Equatable, Sendable {
    public var n, c, h, w: Int  // input (N, C, H, W)
    public var o: Int  // output channels
    public var kh, kw: Int  // kernel
    public var sh, sw: Int  // stride
    public var ph, pw: Int  // padding
    public var dh, dw: Int  // dilation
    public var oh: Int { (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1 }
    public var ow: Int { (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1 }
    public var ckk: Int { c * kh * kw }
    /// 1x1, stride 1, no padding: the convolution is a plain matrix product per image.
    public var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 }

    public init(
        n: Int, c: Int, h: Int, w: Int, o: Int, kh: Int, kw: Int, sh: Int = 1, sw: Int = 1,
        ph: Int = 0, pw: Int = 0, dh: Int = 1, dw: Int = 1
    ) {
        self.n = n; self.c = c; self.h = h; self.w = w; self.o = o; self.kh = kh; self.kw = kw
        self.sh = sh; self.sw = sw; self.ph = ph; self.pw = pw; self.dh = dh; self.dw = dw
    }
}

extension ConvGeometry {
    /// Stride-1 rows: the output rows of chunk `ch` whose input row for kernel row `i` lies inside the input.
    func validOutputRows(kernelRow i: Int, _ ch: ColumnChunk) -> (lo: Int, hi: Int) {
        let lo = max(ch.oy0, min(ch.oy0 + ch.rows, ph - i * dh))
        return (lo, max(lo, min(ch.oy0 + ch.rows, h + ph - i * dh)))
    }
}

/// A block of convolution output columns: `nb` whole images starting at `b0`, or (when nb == 1) the
/// output rows `oy0 ..< oy0 + rows` of image `b0`.
struct ColumnChunk {
    var b0: Int, nb: Int, oy0: Int, rows: Int
    func columns(_ g: ConvGeometry) -> Int { nb * rows * g.ow }
}

/// Splits the output of a convolution into chunks whose im2col matrix fits in `Workspace.columnLimit`.
func columnChunks(_ g: ConvGeometry) -> [ColumnChunk] {
    let ohw = g.oh * g.ow
    let perImage = g.ckk * ohw
    let limit = Workspace.columnLimit
    var chunks: [ColumnChunk] = []
    if perImage <= limit {
        let per = max(1, limit / max(perImage, 1))
        var b = 0
        while b < g.n {
            let nb = min(per, g.n - b)
            chunks.append(ColumnChunk(b0: b, nb: nb, oy0: 0, rows: g.oh))
            b += nb
        }
    } else {
        let rowsPer = max(1, limit / max(g.ckk * g.ow, 1))
        for b in 0..<g.n {
            var oy = 0
            while oy < g.oh {
                let r = min(rowsPer, g.oh - oy)
                chunks.append(ColumnChunk(b0: b, nb: 1, oy0: oy, rows: r))
                oy += r
            }
        }
    }
    return chunks
}

enum ConvKernels {
    /// cols: (C*KH*KW, nb*rows*OW), rows `ld` floats apart (default: its width) <- x: (N, C, H, W) for one
    /// chunk. The C kernel (CKernels/im2col.c): at stride 1 one block copy per row and image with zeroed edges
    /// when the output is as wide as the input, masked row copies otherwise; at stride 2 a permute of the even
    /// lanes (masked loads at the edges).
    static func im2col(
        _ x: UnsafePointer<Float>, _ g: ConvGeometry, _ ch: ColumnChunk,
        _ cols: UnsafeMutablePointer<Float>, ld: Int? = nil, parallel: Bool = true
    ) {
        let hw = g.h * g.w, xb = x + ch.b0 * g.c * hw, ldc = ld ?? ch.columns(g)
        let rowsOf = { (r: Range<Int>) in
            ck_im2col(
                xb, hw * g.c, Int32(g.c), Int32(g.h), Int32(g.w), Int32(g.kh), Int32(g.kw), Int32(g.sh),
                Int32(g.sw), Int32(g.ph), Int32(g.pw), Int32(g.dh), Int32(g.dw), Int32(g.ow), Int32(ch.oy0),
                Int32(ch.rows), Int32(ch.nb), Int32(r.lowerBound), Int32(r.upperBound), cols, ldc)
        }
        if parallel { Threading.parallelChunks(g.ckk, minPerThread: 4, rowsOf) } else { rowsOf(0..<g.ckk) }
    }

    /// gx: (N, C, H, W) += col2im(cols) for one chunk. Parallel over channels (each owns its rows).
    /// `cols` is scratch: entries that fall on padding may be overwritten with zeros.
    static func col2im(
        _ cols: UnsafeMutablePointer<Float>, _ g: ConvGeometry, _ ch: ColumnChunk,
        _ gx: UnsafeMutablePointer<Float>, parallel: Bool = true
    ) {
        let ow = g.ow, L = ch.columns(g), hw = g.h * g.w
        let sameWidth = g.sh == 1 && g.sw == 1 && ow == g.w
        Threading.loop(g.c, parallel: parallel) { c in
            for i in 0..<g.kh {
                for j in 0..<g.kw {
                    let r = (c * g.kh + i) * g.kw + j
                    var s = cols + r * L
                    let ixBase = j * g.dw - g.pw
                    if sameWidth && abs(ixBase) < g.w {
                        // The mirror of im2col's block copy: zero the entries that belong to padding columns
                        // (they would land on a neighbouring row), then one contiguous add per image.
                        let (vLo, vHi) = g.validOutputRows(kernelRow: i, ch)
                        for bb in 0..<ch.nb {
                            if vHi > vLo {
                                let first = s + (vLo - ch.oy0) * ow
                                if ixBase < 0 {
                                    for row in 0..<(vHi - vLo) {
                                        let q = first + row * ow; for t in 0..<(-ixBase) { q[t] = 0 }
                                    }
                                } else if ixBase > 0 {
                                    for row in 0..<(vHi - vLo) {
                                        let q = first + row * ow + ow - ixBase; for t in 0..<ixBase { q[t] = 0 }
                                    }
                                }
                                var src = first, dOff = (vLo - g.ph + i * g.dh) * g.w + ixBase, cnt = (vHi - vLo) * ow
                                if ixBase < 0 { src += -ixBase; dOff += -ixBase; cnt += ixBase }
                                if ixBase > 0 { cnt -= ixBase }
                                if cnt > 0 { ck_add_inplace(gx + ((ch.b0 + bb) * g.c + c) * hw + dOff, src, cnt) }
                            }
                            s += ch.rows * ow
                        }
                        continue
                    }
                    for bb in 0..<ch.nb {
                        let dst = gx + ((ch.b0 + bb) * g.c + c) * hw
                        for oy in ch.oy0..<(ch.oy0 + ch.rows) {
                            let iy = oy * g.sh - g.ph + i * g.dh
                            if iy >= 0 && iy < g.h {
                                let drow = dst + iy * g.w
                                if g.sw == 1 {
                                    let lo = min(ow, max(0, -ixBase)), hi = max(lo, min(ow, g.w - ixBase))
                                    if hi > lo {
                                        let dd = drow + lo + ixBase, ss = s + lo
                                        for k in 0..<(hi - lo) { dd[k] += ss[k] }
                                    }
                                } else {
                                    // Output columns [lo, hi) land inside the row: 0 <= ox * sw + ixBase < w.
                                    let lo = min(ow, ixBase >= 0 ? 0 : (-ixBase + g.sw - 1) / g.sw)
                                    let hi = max(lo, min(ow, g.w - ixBase <= 0 ? 0 : (g.w - ixBase + g.sw - 1) / g.sw))
                                    if hi > lo {
                                        ck_add_row_strided(drow + ixBase, s, Int32(g.sw), Int32(lo), Int32(hi))
                                    }
                                }
                            }
                            s += ow
                        }
                    }
                }
            }
        }
    }

    /// The row stride of a column matrix with `n` columns: n, or n + 16 when n is a multiple of 64 (rows a
    /// multiple of 256 bytes apart fall into a few L1 sets, so a GEMM reading a narrow panel of them in place
    /// keeps evicting its own lines: 2x slower for the CIFAR shapes on Zen 3, 32x32 planes being 4 KiB).
    static func paddedStride(_ n: Int) -> Int { n % 64 == 0 ? n + 16 : n }

    /// Whether to run images in parallel, each with a single-threaded GEMM on L2-sized columns, instead
    /// of multi-threaded GEMMs over large column blocks. Pays off for batches of small images (CIFAR at
    /// batch 128, the detector's per-region head), where the GEMMs are too small to split well.
    static func useImageParallel(_ g: ConvGeometry) -> Bool {
        Threading.threads > 1 && g.n >= 2 * Threading.threads && g.ckk * g.oh * g.ow <= (1 << 18)
    }

    /// Forward over images in parallel (see `useImageParallel`).
    static func forwardImageParallel(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
        _ y: UnsafeMutablePointer<Float>
    ) {
        let ohw = g.oh * g.ow, ld = paddedStride(ohw)
        let workers = Threading.workerCount(g.n)
        let scratch = (0..<workers).map {
            g.isPointwise ? nil : Workspace.buffer(Workspace.workerSlot($0, 0), count: g.ckk * ld)
        }
        Threading.withSingleThreadedBLAS {
            Threading.parallelWorkers(g.n) { worker, range in
                for b in range {
                    let cols: UnsafePointer<Float>
                    var ldb = ohw
                    if let buf = scratch[worker] {
                        im2col(x, g, ColumnChunk(b0: b, nb: 1, oy0: 0, rows: g.oh), buf, ld: ld, parallel: false)
                        cols = UnsafePointer(buf)
                        ldb = ld
                    } else {
                        cols = x + b * g.c * ohw
                    }
                    sgemm(m: g.o, n: ohw, k: g.ckk, a: w, lda: g.ckk, b: cols, ldb: ldb, c: y + b * g.o * ohw, ldc: ohw)
                }
            }
        }
    }

    /// At stride 1 the input gradient of a convolution is itself a convolution (the transposed convolution):
    /// of gy, with the kernel flipped in space, input and output channels swapped, and padding d(k-1)-p.
    /// Returns that convolution's geometry for one image (its output is exactly H x W), or nil when it does
    /// not apply (strided, pointwise, or padding beyond the kernel's reach).
    static func inputGradientAsConvolution(_ g: ConvGeometry) -> ConvGeometry? {
        guard g.sh == 1, g.sw == 1, !g.isPointwise else { return nil }
        let ph = g.dh * (g.kh - 1) - g.ph, pw = g.dw * (g.kw - 1) - g.pw
        guard ph >= 0, pw >= 0 else { return nil }
        let t = ConvGeometry(
            n: 1, c: g.o, h: g.oh, w: g.ow, o: g.c, kh: g.kh, kw: g.kw, ph: ph, pw: pw,
            dh: g.dh, dw: g.dw)
        return t.oh == g.h && t.ow == g.w ? t : nil
    }

    /// wf (C, O, KH, KW) <- w (O, C, KH, KW) flipped in both spatial dimensions.
    static func flipKernel(_ w: UnsafePointer<Float>, _ g: ConvGeometry, _ wf: UnsafeMutablePointer<Float>) {
        let kk = g.kh * g.kw
        for o in 0..<g.o {
            for c in 0..<g.c {
                let s = w + (o * g.c + c) * kk, d = wf + (c * g.o + o) * kk
                for r in 0..<kk { d[kk - 1 - r] = s[r] }
            }
        }
    }

    /// Backward over images in parallel; each worker accumulates its own weight gradient, summed at the end.
    static func backwardImageParallel(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ gy: UnsafePointer<Float>,
        _ g: ConvGeometry, gx: UnsafeMutablePointer<Float>?, gw: UnsafeMutablePointer<Float>?
    ) {
        let ohw = g.oh * g.ow, wsize = g.o * g.ckk, hw = g.h * g.w
        let workers = Threading.workerCount(g.n)
        // With few output channels, the weight gradient's GEMM is computed transposed so that the large
        // column matrix is the A operand, read in place by the GEMM instead of packed for every image.
        let transposedGW = g.o <= 96
        // At stride 1, gx is the forward convolution of gy with the flipped kernel: one im2col of gy and a
        // GEMM that writes gx directly, instead of a GEMM into a column matrix and its col2im scatter-add.
        // The column buffer of the weight gradient is reused for it (one buffer per worker stays in L2).
        let tconv = gx == nil ? nil : inputGradientAsConvolution(g)
        var wf: UnsafeMutablePointer<Float>? = nil
        if let t = tconv {
            let p = Workspace.buffer(0, count: t.o * t.ckk)
            flipKernel(w, g, p)
            wf = p
        }
        let ld = paddedStride(ohw), ldt = paddedStride(hw)
        let colCount = max(g.ckk * ld, tconv.map { $0.ckk * ldt } ?? 0)
        let cols = (0..<workers).map {
            g.isPointwise ? nil : Workspace.buffer(Workspace.workerSlot($0, 0), count: colCount)
        }
        let dcols = (0..<workers).map {
            g.isPointwise || tconv != nil ? nil : Workspace.buffer(Workspace.workerSlot($0, 1), count: g.ckk * ohw)
        }
        let gws = (0..<workers).map { k -> UnsafeMutablePointer<Float>? in
            guard gw != nil else { return nil }
            let p = Workspace.buffer(Workspace.workerSlot(k, 2), count: wsize)
            p.update(repeating: 0, count: wsize)
            return p
        }
        Threading.withSingleThreadedBLAS {
            Threading.parallelWorkers(g.n) { worker, range in
                for b in range {
                    let gyb = gy + b * g.o * ohw
                    let whole = ColumnChunk(b0: b, nb: 1, oy0: 0, rows: g.oh)
                    if let gwk = gws[worker] {
                        let c: UnsafePointer<Float>
                        var ldc = ohw
                        if let buf = cols[worker] {
                            im2col(x, g, whole, buf, ld: ld, parallel: false); c = UnsafePointer(buf)
                            ldc = ld
                        } else {
                            c = x + b * g.c * ohw
                        }
                        if transposedGW {
                            // gw^T (CKK, O) += cols (CKK, HW) gy^T (HW, O): the column matrix is read in place.
                            sgemm(
                                transB: true, m: g.ckk, n: g.o, k: ohw, a: c, lda: ldc, b: gyb, ldb: ohw,
                                beta: 1, c: gwk, ldc: g.o)
                        } else {
                            sgemm(
                                transB: true, m: g.o, n: g.ckk, k: ohw, a: gyb, lda: ohw, b: c, ldb: ldc,
                                beta: 1, c: gwk, ldc: g.ckk)
                        }
                    }
                    if let gx {
                        if let t = tconv, let wf, let buf = cols[worker] {
                            im2col(gyb, t, ColumnChunk(b0: 0, nb: 1, oy0: 0, rows: t.oh), buf, ld: ldt, parallel: false)
                            sgemm(
                                m: g.c, n: hw, k: t.ckk, a: wf, lda: t.ckk, b: buf, ldb: ldt, c: gx + b * g.c * hw,
                                ldc: hw)
                        } else if let d = dcols[worker] {
                            sgemm(
                                transA: true, m: g.ckk, n: ohw, k: g.o, a: w, lda: g.ckk, b: gyb, ldb: ohw, c: d,
                                ldc: ohw)
                            // Zeroed here, per image, while it is about to be accumulated into (in cache).
                            (gx + b * g.c * g.h * g.w).update(repeating: 0, count: g.c * g.h * g.w)
                            col2im(d, g, whole, gx, parallel: false)
                        } else {
                            sgemm(
                                transA: true, m: g.c, n: ohw, k: g.o, a: w, lda: g.c, b: gyb, ldb: ohw,
                                c: gx + b * g.c * ohw, ldc: ohw)
                        }
                    }
                }
            }
        }
        if let gw {
            if transposedGW {
                Threading.parallelFor(g.o) { o in
                    for gwk in gws { let p = gwk!; for r in 0..<g.ckk { gw[o * g.ckk + r] += p[r * g.o + o] } }
                }
            } else {
                Threading.parallelChunks(wsize, minPerThread: 1 << 14) { r in
                    for gwk in gws { let p = gwk!; for i in r { gw[i] += p[i] } }
                }
            }
        }
    }

    /// y: (N, O, OH, OW) = conv(x: (N, C, H, W), w: (O, C, KH, KW)) + bias: (O)
    static func forward(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
        _ g: ConvGeometry, _ y: UnsafeMutablePointer<Float>
    ) {
        let ohw = g.oh * g.ow
        if Winograd.applies(g) && winogradForward(x, w, g, y) {
            // done (3x3, stride 1, padding 1)
        } else if useImageParallel(g) {
            forwardImageParallel(x, w, g, y)
        } else if g.isPointwise && ohw >= 64 {
            // Direct GEMM per image: y[b] (O, HW) = w (O, C) x[b] (C, HW).
            for b in 0..<g.n {
                sgemm(
                    m: g.o, n: ohw, k: g.c, a: w, lda: g.c, b: x + b * g.c * ohw, ldb: ohw,
                    c: y + b * g.o * ohw, ldc: ohw)
            }
        } else {
            for ch in columnChunks(g) {
                let L = ch.columns(g)
                let cols = Workspace.buffer(0, count: g.ckk * L)
                im2col(x, g, ch, cols)
                if ch.nb == 1 {
                    // Write straight into the output rows of this image.
                    sgemm(
                        m: g.o, n: L, k: g.ckk, a: w, lda: g.ckk, b: cols, ldb: L,
                        c: y + ch.b0 * g.o * ohw + ch.oy0 * g.ow, ldc: ohw)
                } else {
                    let tmp = Workspace.buffer(1, count: g.o * L)
                    sgemm(m: g.o, n: L, k: g.ckk, a: w, lda: g.ckk, b: cols, ldb: L, c: tmp, ldc: L)
                    // (O, nb*OHW) -> (nb, O, OHW)
                    Threading.parallelFor(ch.nb * g.o, minPerThread: 16) { idx in
                        let bb = idx / g.o, o = idx % g.o
                        (y + ((ch.b0 + bb) * g.o + o) * ohw).update(from: tmp + o * L + bb * ohw, count: ohw)
                    }
                }
            }
        }
        if let bias {
            Threading.parallelFor(g.n * g.o, minPerThread: 16) { idx in
                let bv = bias[idx % g.o]
                let p = y + idx * ohw
                for k in 0..<ohw { p[k] += bv }
            }
        }
    }

    /// Gradients of a convolution. gx (if given) is overwritten (its contents on entry do not matter); gw
    /// and gb are accumulated into (beta = 1), so callers may pass zeroed buffers or existing gradients.
    static func backward(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ gy: UnsafePointer<Float>,
        _ g: ConvGeometry, gx: UnsafeMutablePointer<Float>?, gw: UnsafeMutablePointer<Float>?,
        gb: UnsafeMutablePointer<Float>?, winograd: Bool = true
    ) {
        let ohw = g.oh * g.ow
        if let gb {
            // gb[o] += sum over n and positions of gy
            Threading.parallelFor(g.o) { o in
                var s: Float = 0
                for b in 0..<g.n {
                    let p = gy + (b * g.o + o) * ohw
                    var acc: Float = 0
                    for k in 0..<ohw { acc += p[k] }
                    s += acc
                }
                gb[o] += s
            }
        }
        if gx == nil && gw == nil { return }
        if winograd && Winograd.applies(g) {
            // What Winograd did not compute (too few tiles for the weight gradient, or no workspace) by the usual path.
            let done = winogradBackward(x, w, gy, g, gx: gx, gw: gw)
            let gxLeft = done.gx ? nil : gx, gwLeft = done.gw ? nil : gw
            if gxLeft != nil || gwLeft != nil {
                backward(x, w, gy, g, gx: gxLeft, gw: gwLeft, gb: nil, winograd: false)
            }
            return
        }
        if useImageParallel(g) {
            backwardImageParallel(x, w, gy, g, gx: gx, gw: gw)
            return
        }
        if g.isPointwise && ohw >= 64 {
            for b in 0..<g.n {
                let xb = x + b * g.c * ohw, gyb = gy + b * g.o * ohw
                if let gw {  // gw (O, C) += gy[b] (O, HW) x[b]^T (HW, C)
                    sgemm(
                        transB: true, m: g.o, n: g.c, k: ohw, a: gyb, lda: ohw, b: xb, ldb: ohw,
                        beta: 1, c: gw, ldc: g.c)
                }
                if let gx {  // gx[b] (C, HW) = w^T (C, O) gy[b] (O, HW)
                    sgemm(
                        transA: true, m: g.c, n: ohw, k: g.o, a: w, lda: g.c, b: gyb, ldb: ohw,
                        c: gx + b * g.c * ohw, ldc: ohw)
                }
            }
            return
        }
        // The chunked path accumulates col2im contributions into gx.
        if let gx { gx.update(repeating: 0, count: g.n * g.c * g.h * g.w) }
        for ch in columnChunks(g) {
            let L = ch.columns(g)
            // Output gradient of this chunk as an (O, L) matrix.
            let gyc: UnsafePointer<Float>
            let ldg: Int
            if ch.nb == 1 {
                gyc = gy + ch.b0 * g.o * ohw + ch.oy0 * g.ow
                ldg = ohw
            } else {
                let tmp = Workspace.buffer(1, count: g.o * L)
                Threading.parallelFor(ch.nb * g.o, minPerThread: 16) { idx in
                    let bb = idx / g.o, o = idx % g.o
                    (tmp + o * L + bb * ohw).update(from: gy + ((ch.b0 + bb) * g.o + o) * ohw, count: ohw)
                }
                gyc = UnsafePointer(tmp)
                ldg = L
            }
            if let gw {
                let cols = Workspace.buffer(0, count: g.ckk * L)
                im2col(x, g, ch, cols)
                // gw (O, CKK) += gyc (O, L) cols^T (L, CKK)
                sgemm(
                    transB: true, m: g.o, n: g.ckk, k: L, a: gyc, lda: ldg, b: cols, ldb: L,
                    beta: 1, c: gw, ldc: g.ckk)
            }
            if let gx {
                let dcols = Workspace.buffer(2, count: g.ckk * L)
                // dcols (CKK, L) = w^T (CKK, O) gyc (O, L)
                sgemm(
                    transA: true, m: g.ckk, n: L, k: g.o, a: w, lda: g.ckk, b: gyc, ldb: ldg,
                    c: dcols, ldc: L)
                col2im(dcols, g, ch, gx)
            }
        }
    }
}

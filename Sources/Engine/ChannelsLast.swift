import CKernels
import Foundation

/// A convolution prepared for inference on channels-last tensors (N, H, W, C): the weights, with a folded
/// batch norm's per-channel scale, packed into the layout the kernel reads (`ck_conv_pack`; for 3x3 stride-1
/// convolutions over inputs with enough 4x4 tiles, Winograd's transformed weights, `ck_wino_pack`), and the bias
/// (a folded batch norm's shift), the residual addition and the ReLU applied in the kernel's output pass
/// (`ck_conv_nhwc`: implicit GEMM, no im2col buffer; `ck_wino_nhwc`). Each packing is made on first use and
/// kept. No autograd: for inference only.
public final class PackedConv: @unchecked Sendable {
    public let inChannels: Int, outChannels: Int
    public let kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)
    /// Per output channel, added before the residual and the ReLU.
    let bias: Tensor
    private let weight: Tensor, scale: [Float]?
    private let lock = NSLock()
    private var direct: Tensor?, winograd: Tensor?

    /// weight: (O, C, KH, KW); scale and bias: O values each (nil: 1 and 0). No dilation. The weight is read
    /// when a packing is first needed: it must not change while this object is in use.
    public init(weight: Tensor, scale: [Float]? = nil, bias: [Float]? = nil, stride: (Int, Int), padding: (Int, Int)) {
        precondition(weight.rank == 4, "PackedConv: weight must be (O, C, KH, KW), got \(weight.shape)")
        let o = weight.shape[0], c = weight.shape[1], kh = weight.shape[2], kw = weight.shape[3]
        precondition(scale.map { $0.count == o } ?? true, "PackedConv: \(o) output channels need \(o) scales")
        precondition(bias.map { $0.count == o } ?? true, "PackedConv: \(o) output channels need \(o) biases")
        inChannels = c; outChannels = o; kernel = (kh, kw); self.stride = stride; self.padding = padding
        self.weight = weight; self.scale = scale
        self.bias = Tensor(bias ?? [Float](repeating: 0, count: o), shape: [o])
    }

    /// The packing made by `pack` (size floats; pack returns false when it failed), made once; nil on failure.
    private func packing(
        _ cached: ReferenceWritableKeyPath<PackedConv, Tensor?>, size: Int,
        _ pack: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>) -> Bool
    ) -> Tensor? {
        lock.withLock {
            if let p = self[keyPath: cached] { return p }
            let p = Tensor(uninitialized: [size])
            let ok = scale.map { s in s.withUnsafeBufferPointer { pack($0.baseAddress, p.data) } } ?? pack(nil, p.data)
            guard ok else { return nil }
            self[keyPath: cached] = p
            return p
        }
    }

    /// Whether an input of n x h x w runs by Winograd.
    func usesWinograd(n: Int, h: Int, w: Int) -> Bool {
        Winograd.fits(kernel: kernel, stride: stride, padding: padding)
            && Winograd.pays(n: n, h: h, w: w, c: inChannels)
    }

    /// The output size for an input of `h` x `w`.
    public func outputSize(h: Int, w: Int) -> (Int, Int) {
        ((h + 2 * padding.0 - kernel.0) / stride.0 + 1, (w + 2 * padding.1 - kernel.1) / stride.1 + 1)
    }

    /// x: (N, H, W, C) -> (N, OH, OW, O) = act(conv(x) + bias + residual), residual (N, OH, OW, O) or nil.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, relu: Bool) -> Tensor {
        precondition(
            x.rank == 4 && x.shape[3] == inChannels,
            "PackedConv: input must be (N, H, W, \(inChannels)), got \(x.shape)")
        let n = x.shape[0], h = x.shape[1], w = x.shape[2], o = Int32(outChannels), c = Int32(inChannels)
        let (oh, ow) = outputSize(h: h, w: w)
        precondition(oh > 0 && ow > 0, "PackedConv: input \(h)x\(w) is too small for the kernel")
        let shape = [n, oh, ow, outChannels]
        if let residual { precondition(residual.shape == shape, "PackedConv: residual \(residual.shape) != \(shape)") }
        let y = Tensor(uninitialized: shape)
        let res = residual.map { UnsafePointer($0.data) }, threads = Int32(currentGEMMThreads())
        if usesWinograd(n: n, h: h, w: w),
            let u = packing(
                \.winograd, size: ck_wino_packed_size(o, c),
                {
                    ck_wino_pack(weight.data, $0, o, c, $1); return true
                }),
            ck_wino_nhwc(
                x.data, Int32(n), Int32(h), Int32(w), c, u.data, o, bias.data, res, relu ? 1 : 0, y.data, threads)
                != 0
        {
            return y
        }
        let (kh, kw) = (Int32(kernel.0), Int32(kernel.1))
        let p = packing(\.direct, size: ck_conv_packed_size(o, c, kh, kw)) {
            ck_conv_pack(weight.data, $0, o, c, kh, kw, $1)
            return true
        }!
        ck_conv_nhwc(
            x.data, Int32(n), Int32(h), Int32(w), c, p.data, o, kh, kw, Int32(stride.0), Int32(stride.1),
            Int32(padding.0), Int32(padding.1), bias.data, res, relu ? 1 : 0, y.data, threads)
        return y
    }
}

/// (N, C, H, W) -> (N, H, W, C), not recorded.
public func toChannelsLast(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "toChannelsLast: input must be (N, C, H, W), got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3]
    let y = Tensor(uninitialized: [n, x.shape[2], x.shape[3], c])
    transposePlanes(x.data, y.data, count: n, rows: c, cols: hw)
    return y
}

/// (N, H, W, C) -> (N, C, H, W), not recorded.
public func toChannelsFirst(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "toChannelsFirst: input must be (N, H, W, C), got \(x.shape)")
    let n = x.shape[0], c = x.shape[3], hw = x.shape[1] * x.shape[2]
    let y = Tensor(uninitialized: [n, c, x.shape[1], x.shape[2]])
    transposePlanes(x.data, y.data, count: n, rows: hw, cols: c)
    return y
}

/// dst[b] (cols, rows) = src[b] (rows, cols)^T for `count` matrices, in parallel over tiles.
func transposePlanes(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, rows: Int, cols: Int)
{
    let tile = 64
    let tr = (rows + tile - 1) / tile, tc = (cols + tile - 1) / tile
    Threading.parallelFor(count * tr * tc) { idx in
        let b = idx / (tr * tc), r0 = (idx / tc) % tr * tile, c0 = idx % tc * tile
        ck_transpose(
            src + b * rows * cols + r0 * cols + c0, cols, Int32(min(tile, rows - r0)), Int32(min(tile, cols - c0)),
            dst + b * rows * cols + c0 * rows + r0, rows)
    }
}

/// (N, H, W, C) -> (N, C): the mean over positions, not recorded.
public func globalAvgPoolChannelsLast(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "globalAvgPoolChannelsLast: input must be (N, H, W, C), got \(x.shape)")
    let n = x.shape[0], hw = x.shape[1] * x.shape[2], c = x.shape[3]
    let y = Tensor(zeros: [n, c])
    let inv = 1 / Float(hw)
    Threading.parallelFor(n) { b in
        let out = y.data + b * c
        for p in 0..<hw { ck_add_inplace(out, x.data + (b * hw + p) * c, c) }
        for k in 0..<c { out[k] *= inv }
    }
    return y
}

/// Max pooling of a channels-last tensor (N, H, W, C) -> (N, OH, OW, C), not recorded: the semantics of
/// `maxPool2d` (padding never wins, NaN wins, a window with no input position gives 0), each output position the
/// elementwise maximum of its window's channel vectors.
public func maxPool2dChannelsLast(
    _ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int) = (0, 0)
) -> Tensor {
    precondition(x.rank == 4, "maxPool2dChannelsLast: input must be (N, H, W, C), got \(x.shape)")
    let n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
    let oh = (h + 2 * padding.0 - kernel.0) / stride.0 + 1, ow = (w + 2 * padding.1 - kernel.1) / stride.1 + 1
    precondition(oh > 0 && ow > 0, "maxPool2dChannelsLast: input \(h)x\(w) is too small for the window")
    let y = Tensor(uninitialized: [n, oh, ow, c])
    Threading.parallelFor(n * oh, minPerThread: 2) { row in
        let b = row / oh, oy = row % oh
        for ox in 0..<ow {
            let out = y.data + ((b * oh + oy) * ow + ox) * c
            var any = false
            for i in 0..<kernel.0 {
                let iy = oy * stride.0 - padding.0 + i
                guard iy >= 0 && iy < h else { continue }
                for j in 0..<kernel.1 {
                    let ix = ox * stride.1 - padding.1 + j
                    guard ix >= 0 && ix < w else { continue }
                    let src = x.data + ((b * h + iy) * w + ix) * c
                    if any { ck_max_rows(out, src, c) } else { out.update(from: src, count: c); any = true }
                }
            }
            if !any { out.update(repeating: 0, count: c) }
        }
    }
    return y
}

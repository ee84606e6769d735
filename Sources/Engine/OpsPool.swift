import Foundation

private func poolGeometry(
    _ x: Tensor, _ kernel: (Int, Int), _ stride: (Int, Int), _ padding: (Int, Int),
    _ name: String
) -> ConvGeometry {
    precondition(x.rank == 4, "\(name): input must be (N, C, H, W), got \(x.shape)")
    precondition(
        padding.0 * 2 <= kernel.0 && padding.1 * 2 <= kernel.1,
        "\(name): padding \(padding) must be at most half of kernel \(kernel)")
    let g = ConvGeometry(
        n: x.shape[0], c: x.shape[1], h: x.shape[2], w: x.shape[3], o: x.shape[1],
        kh: kernel.0, kw: kernel.1, sh: stride.0, sw: stride.1, ph: padding.0, pw: padding.1)
    precondition(g.oh > 0 && g.ow > 0, "\(name): input \(x.shape[2])x\(x.shape[3]) too small for kernel \(kernel)")
    return g
}

/// Max pooling (padding acts as -infinity, floor output size as torch's ceil_mode=False).
public func maxPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int) = (0, 0)) -> Tensor {
    let g = poolGeometry(x, kernel, stride, padding, "maxPool2d")
    let y = Tensor(uninitialized: [g.n, g.c, g.oh, g.ow])
    if !(GradMode.isEnabled && x.requiresGrad) {
        PoolKernels.maxForwardValues(x.data, g, y.data)
        return y
    }
    let arg = UnsafeMutablePointer<Int32>.allocate(capacity: max(y.count, 1))
    PoolKernels.maxForward(x.data, g, y.data, arg)
    let argmax = ArgmaxBox(arg)
    let xShape = x.shape  // not x: backward needs only its shape
    return Tensor.record(y, inputs: [x]) { gy in
        let gx = Tensor(zeros: xShape)
        PoolKernels.maxBackward(gy.data, argmax.p, g, gx.data)
        return [gx]
    }
}

/// Owns the argmax indices of a max pooling until its backward is released.
final class ArgmaxBox {
    let p: UnsafeMutablePointer<Int32>
    init(_ p: UnsafeMutablePointer<Int32>) { self.p = p }
    deinit { p.deallocate() }
}

/// Average pooling (torch semantics; count_include_pad defaults to true as in torch).
public func avgPool2d(
    _ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int) = (0, 0),
    countIncludePad: Bool = true
) -> Tensor {
    let g = poolGeometry(x, kernel, stride, padding, "avgPool2d")
    let y = Tensor(uninitialized: [g.n, g.c, g.oh, g.ow])
    PoolKernels.avgForward(x.data, g, countIncludePad: countIncludePad, y.data)
    let xShape = x.shape  // not x: backward needs only its shape
    return Tensor.record(y, inputs: [x]) { gy in
        let gx = Tensor(zeros: xShape)
        PoolKernels.avgBackward(gy.data, g, countIncludePad: countIncludePad, gx.data)
        return [gx]
    }
}

/// Global average pooling: (N, C, H, W) -> (N, C).
public func globalAvgPool(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "globalAvgPool: input must be (N, C, H, W), got \(x.shape)")
    let nc = x.shape[0] * x.shape[1], hw = x.shape[2] * x.shape[3]
    let y = Tensor(uninitialized: [x.shape[0], x.shape[1]])
    let inv = 1 / Float(hw)
    Threading.parallelFor(nc, minPerThread: 64) { i in
        let p = x.data + i * hw
        var s: Float = 0
        for k in 0..<hw { s += p[k] }
        y.data[i] = s * inv
    }
    let xShape = x.shape  // not x: backward needs only its shape
    return Tensor.record(y, inputs: [x]) { gy in
        let gx = Tensor(uninitialized: xShape)
        Threading.parallelFor(nc, minPerThread: 64) { i in
            (gx.data + i * hw).update(repeating: gy.data[i] * inv, count: hw)
        }
        return [gx]
    }
}

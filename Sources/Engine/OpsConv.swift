import Foundation

/// 2-D convolution. x: (N, C, H, W), weight: (O, C, KH, KW), bias: (O) -> (N, O, OH, OW).
/// im2col + OpenBLAS sgemm, a direct GEMM for 1x1 stride-1 layers, and a bounded column workspace.
public func conv2d(
    _ x: Tensor, _ weight: Tensor, bias: Tensor? = nil,
    stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
    dilation: (Int, Int) = (1, 1)
) -> Tensor {
    precondition(x.rank == 4, "conv2d: input must be (N, C, H, W), got shape \(x.shape)")
    precondition(weight.rank == 4, "conv2d: weight must be (O, C, KH, KW), got shape \(weight.shape)")
    precondition(
        x.shape[1] == weight.shape[1],
        "conv2d: input has \(x.shape[1]) channels but weight \(weight.shape) expects \(weight.shape[1])")
    if let bias {
        precondition(
            bias.count == weight.shape[0],
            "conv2d: bias has \(bias.count) values for \(weight.shape[0]) output channels")
    }
    precondition(
        stride.0 > 0 && stride.1 > 0 && dilation.0 > 0 && dilation.1 > 0 && padding.0 >= 0 && padding.1 >= 0,
        "conv2d: stride and dilation must be positive and padding non-negative")
    let g = ConvGeometry(
        n: x.shape[0], c: x.shape[1], h: x.shape[2], w: x.shape[3], o: weight.shape[0],
        kh: weight.shape[2], kw: weight.shape[3], sh: stride.0, sw: stride.1,
        ph: padding.0, pw: padding.1, dh: dilation.0, dw: dilation.1)
    precondition(
        g.oh > 0 && g.ow > 0,
        "conv2d: input \(x.shape[2])x\(x.shape[3]) is too small for kernel \(g.kh)x\(g.kw) with padding \(padding), "
        + "dilation \(dilation)"
    )
    let y = Tensor(uninitialized: [g.n, g.o, g.oh, g.ow])
    ConvKernels.forward(x.data, weight.data, bias?.data, g, y.data)
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return Tensor.record(y, inputs: inputs) { gy in
        let gx = x.requiresGrad ? Tensor(uninitialized: x.shape) : nil  // the kernel writes every element
        let gw = weight.requiresGrad ? Tensor(zeros: weight.shape) : nil
        let gb = (bias?.requiresGrad ?? false) ? Tensor(zeros: [g.o]) : nil
        ConvKernels.backward(x.data, weight.data, gy.data, g, gx: gx?.data, gw: gw?.data, gb: gb?.data)
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}

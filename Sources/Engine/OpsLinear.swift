import Foundation

/// Fully connected layer: x: (N, in), weight: (out, in), bias: (out) -> (N, out) = x W^T + b.
public func linear(_ x: Tensor, _ weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(
        x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
        "linear: input \(x.shape) does not match weight \(weight.shape) (expects (N, "
        + "\(weight.shape.count == 2 ? weight.shape[1] : -1)))"
    )
    let n = x.shape[0], k = x.shape[1], m = weight.shape[0]
    if let bias { precondition(bias.count == m, "linear: bias has \(bias.count) values for \(m) outputs") }
    let y = Tensor(uninitialized: [n, m])
    if let bias {
        for i in 0..<n { (y.data + i * m).update(from: bias.data, count: m) }
    }
    sgemm(
        transB: true, m: n, n: m, k: k, a: x.data, lda: k, b: weight.data, ldb: k,
        beta: bias == nil ? 0 : 1, c: y.data, ldc: m)
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return Tensor.record(y, inputs: inputs) { gy in
        var gx: Tensor? = nil, gw: Tensor? = nil, gb: Tensor? = nil
        if x.requiresGrad {  // gx (N, in) = gy (N, out) W (out, in)
            gx = Tensor(uninitialized: x.shape)
            sgemm(m: n, n: k, k: m, a: gy.data, lda: m, b: weight.data, ldb: k, c: gx!.data, ldc: k)
        }
        if weight.requiresGrad {  // gw (out, in) = gy^T (out, N) x (N, in)
            gw = Tensor(uninitialized: weight.shape)
            sgemm(transA: true, m: m, n: k, k: n, a: gy.data, lda: m, b: x.data, ldb: k, c: gw!.data, ldc: k)
        }
        if let bias, bias.requiresGrad {
            let g = Tensor(zeros: [m])
            for i in 0..<n { for j in 0..<m { g.data[j] += gy.data[i * m + j] } }
            gb = g
        }
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}

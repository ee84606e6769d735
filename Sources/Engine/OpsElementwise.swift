import Foundation
import CKernels

// Elementwise kernels are small structs, so that `map1` / `map2` are specialised per operation and the
// per-element function is inlined into a vectorisable loop (a closure argument would be an opaque call
// per element).
protocol ElementOp1 { func callAsFunction(_ a: Float) -> Float }
protocol ElementOp2 { func callAsFunction(_ a: Float, _ b: Float) -> Float }

private struct Negate: ElementOp1 { @inline(__always) func callAsFunction(_ a: Float) -> Float { -a } }
private struct Times: ElementOp1 { let s: Float; @inline(__always) func callAsFunction(_ a: Float) -> Float { a * s } }
private struct Plus: ElementOp1 { let s: Float; @inline(__always) func callAsFunction(_ a: Float) -> Float { a + s } }
private struct Relu: ElementOp1 { @inline(__always) func callAsFunction(_ a: Float) -> Float { a > 0 ? a : 0 } }
private struct Sigmoid: ElementOp1 {
    func callAsFunction(_ a: Float) -> Float {
        a >= 0 ? 1 / (1 + Foundation.exp(-a)) : Foundation.exp(a) / (1 + Foundation.exp(a))
    }
}
/// The binary maps with a C kernel (`ck_map2`, one variant per instruction set): a + b, a - b, a * b,
/// max(a + b, 0), and gy where the output y is positive (the gradient of relu, given y).
private enum KernelOp2: Int32 {
    case add = 0, sub = 1, mul = 2, addRelu = 3, passWherePositive = 4
}
private struct SigmoidGrad: ElementOp2 {
    @inline(__always) func callAsFunction(_ gy: Float, _ y: Float) -> Float { gy * y * (1 - y) }
}

@inline(__always)
private func map1<F: ElementOp1>(_ x: Tensor, _ f: F) -> Tensor {
    let y = Tensor(uninitialized: x.shape)
    let a = x.data, b = y.data
    Threading.parallelChunks(x.count, minPerThread: 1 << 15) { r in for i in r { b[i] = f(a[i]) } }
    return y
}

@inline(__always)
private func map2<F: ElementOp2>(_ x: Tensor, _ z: Tensor, _ name: String, _ f: F) -> Tensor {
    precondition(x.shape == z.shape, "\(name): shapes \(x.shape) and \(z.shape) differ")
    let y = Tensor(uninitialized: x.shape)
    let a = x.data, c = z.data, b = y.data
    Threading.parallelChunks(x.count, minPerThread: 1 << 15) { r in for i in r { b[i] = f(a[i], c[i]) } }
    return y
}

private func map2(_ x: Tensor, _ z: Tensor, _ name: String, _ op: KernelOp2) -> Tensor {
    precondition(x.shape == z.shape, "\(name): shapes \(x.shape) and \(z.shape) differ")
    let y = Tensor(uninitialized: x.shape)
    let a = x.data, c = z.data, b = y.data
    Threading.parallelChunks(x.count, minPerThread: 1 << 15) { r in
        ck_map2(op.rawValue, a + r.lowerBound, c + r.lowerBound, b + r.lowerBound, r.count)
    }
    return y
}

/// Elementwise sum of two tensors of the same shape.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    let y = map2(a, b, "add", .add)
    return Tensor.record(y, inputs: [a, b]) { gy in [gy, gy] }
}

/// Elementwise difference.
public func sub(_ a: Tensor, _ b: Tensor) -> Tensor {
    let y = map2(a, b, "sub", .sub)
    return Tensor.record(y, inputs: [a, b]) { gy in [gy, b.requiresGrad ? map1(gy, Negate()) : nil] }
}

/// Elementwise product.
public func mul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let y = map2(a, b, "mul", .mul)
    return Tensor.record(y, inputs: [a, b]) { gy in
        [
            a.requiresGrad ? map2(gy, b, "mul", .mul) : nil,
            b.requiresGrad ? map2(gy, a, "mul", .mul) : nil
        ]
    }
}

/// x * s
public func scale(_ x: Tensor, _ s: Float) -> Tensor {
    let y = map1(x, Times(s: s))
    return Tensor.record(y, inputs: [x]) { gy in [map1(gy, Times(s: s))] }
}

/// x + s
public func addScalar(_ x: Tensor, _ s: Float) -> Tensor {
    let y = map1(x, Plus(s: s))
    return Tensor.record(y, inputs: [x]) { gy in [gy] }
}

/// max(x, 0)
public func relu(_ x: Tensor) -> Tensor {
    let y = map1(x, Relu())
    return Tensor.record(y, inputs: [x]) { gy in [map2(gy, y, "relu", .passWherePositive)] }
}

/// relu(a + b): the residual join of a ResNet block, in one pass.
public func addRelu(_ a: Tensor, _ b: Tensor) -> Tensor {
    let y = map2(a, b, "addRelu", .addRelu)
    return Tensor.record(y, inputs: [a, b]) { gy in
        let g = map2(gy, y, "addRelu", .passWherePositive)
        return [g, g]
    }
}

/// 1 / (1 + exp(-x))
public func sigmoid(_ x: Tensor) -> Tensor {
    let y = map1(x, Sigmoid())
    return Tensor.record(y, inputs: [x]) { gy in [map2(gy, y, "sigmoid", SigmoidGrad())] }
}

public func + (a: Tensor, b: Tensor) -> Tensor { add(a, b) }
public func - (a: Tensor, b: Tensor) -> Tensor { sub(a, b) }
public func * (a: Tensor, b: Tensor) -> Tensor { mul(a, b) }
public func * (a: Tensor, s: Float) -> Tensor { scale(a, s) }
public func * (s: Float, a: Tensor) -> Tensor { scale(a, s) }

/// Sum of all elements -> scalar (shape []).
public func sum(_ x: Tensor) -> Tensor {
    var s: Double = 0
    for i in 0..<x.count { s += Double(x.data[i]) }
    let y = Tensor([Float(s)], shape: [])
    return Tensor.record(y, inputs: [x]) { gy in [Tensor(repeating: gy.data[0], shape: x.shape)] }
}

/// Mean of all elements -> scalar (shape []).
public func mean(_ x: Tensor) -> Tensor {
    precondition(x.count > 0, "mean: empty tensor")
    return scale(sum(x), 1 / Float(x.count))
}

/// Weighted sum of scalar losses: sum_i w_i * l_i.
public func weightedSum(_ terms: [(Tensor, Float)]) -> Tensor {
    precondition(!terms.isEmpty, "weightedSum: no terms")
    var s: Float = 0
    for (t, w) in terms { s += w * t.item() }
    let y = Tensor([s], shape: [])
    return Tensor.record(y, inputs: terms.map { $0.0 }) { gy in
        terms.map { (t, w) in Tensor(repeating: gy.data[0] * w, shape: t.shape) }
    }
}

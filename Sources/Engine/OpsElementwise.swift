import Foundation

@inline(__always)
private func map1(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    let y = Tensor(uninitialized: x.shape)
    let a = x.data, b = y.data
    Threading.parallelChunks(x.count, minPerThread: 1 << 15) { r in for i in r { b[i] = f(a[i]) } }
    return y
}

@inline(__always)
private func map2(_ x: Tensor, _ z: Tensor, _ name: String, _ f: (Float, Float) -> Float) -> Tensor {
    precondition(x.shape == z.shape, "\(name): shapes \(x.shape) and \(z.shape) differ")
    let y = Tensor(uninitialized: x.shape)
    let a = x.data, c = z.data, b = y.data
    Threading.parallelChunks(x.count, minPerThread: 1 << 15) { r in for i in r { b[i] = f(a[i], c[i]) } }
    return y
}

/// Elementwise sum of two tensors of the same shape.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    let y = map2(a, b, "add") { $0 + $1 }
    return Tensor.record(y, inputs: [a, b]) { gy in [gy, gy] }
}

/// Elementwise difference.
public func sub(_ a: Tensor, _ b: Tensor) -> Tensor {
    let y = map2(a, b, "sub") { $0 - $1 }
    return Tensor.record(y, inputs: [a, b]) { gy in [gy, b.requiresGrad ? map1(gy) { -$0 } : nil] }
}

/// Elementwise product.
public func mul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let y = map2(a, b, "mul") { $0 * $1 }
    return Tensor.record(y, inputs: [a, b]) { gy in
        [a.requiresGrad ? map2(gy, b, "mul") { $0 * $1 } : nil,
         b.requiresGrad ? map2(gy, a, "mul") { $0 * $1 } : nil]
    }
}

/// x * s
public func scale(_ x: Tensor, _ s: Float) -> Tensor {
    let y = map1(x) { $0 * s }
    return Tensor.record(y, inputs: [x]) { gy in [map1(gy) { $0 * s }] }
}

/// x + s
public func addScalar(_ x: Tensor, _ s: Float) -> Tensor {
    let y = map1(x) { $0 + s }
    return Tensor.record(y, inputs: [x]) { gy in [gy] }
}

/// max(x, 0)
public func relu(_ x: Tensor) -> Tensor {
    let y = map1(x) { $0 > 0 ? $0 : 0 }
    return Tensor.record(y, inputs: [x]) { gy in [map2(gy, y, "relu") { $1 > 0 ? $0 : 0 }] }
}

/// relu(a + b): the residual join of a ResNet block, in one pass.
public func addRelu(_ a: Tensor, _ b: Tensor) -> Tensor {
    let y = map2(a, b, "addRelu") { let s = $0 + $1; return s > 0 ? s : 0 }
    return Tensor.record(y, inputs: [a, b]) { gy in
        let g = map2(gy, y, "addRelu") { $1 > 0 ? $0 : 0 }
        return [g, g]
    }
}

/// 1 / (1 + exp(-x))
public func sigmoid(_ x: Tensor) -> Tensor {
    let y = map1(x) { $0 >= 0 ? 1 / (1 + Foundation.exp(-$0)) : Foundation.exp($0) / (1 + Foundation.exp($0)) }
    return Tensor.record(y, inputs: [x]) { gy in [map2(gy, y, "sigmoid") { $0 * $1 * (1 - $1) }] }
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

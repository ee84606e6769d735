import Foundation

extension Tensor {
    /// The same values with another shape (one dimension may be -1). Shares storage.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let k = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != k }.map { $0.element }.reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshape: cannot reshape \(shape) to \(newShape)")
            s[k] = count / known
        }
        let y = Tensor(viewing: storage, shape: s)
        let inShape = shape
        return Tensor.record(y, inputs: [self]) { gy in [Tensor(viewing: gy.storage, shape: inShape)] }
    }

    /// (N, ...) -> (N, rest)
    public func flattened() -> Tensor { reshaped([shape[0], -1]) }
}

/// Concatenation along dimension 1 of (N, C_i, ...) tensors with equal other dimensions.
public func concatChannels(_ xs: [Tensor]) -> Tensor {
    precondition(!xs.isEmpty, "concatChannels: no inputs")
    let n = xs[0].shape[0]
    let inner = xs[0].count / max(n * xs[0].shape[1], 1)
    for t in xs {
        precondition(
            t.shape[0] == n && Array(t.shape.dropFirst(2)) == Array(xs[0].shape.dropFirst(2)),
            "concatChannels: shape \(t.shape) does not match \(xs[0].shape) outside dimension 1")
    }
    let cs = xs.map { $0.shape[1] }
    let ctot = cs.reduce(0, +)
    var outShape = xs[0].shape; outShape[1] = ctot
    let y = Tensor(uninitialized: outShape)
    for b in 0..<n {
        var off = 0
        for (t, c) in zip(xs, cs) {
            (y.data + (b * ctot + off) * inner).update(from: t.data + b * c * inner, count: c * inner)
            off += c
        }
    }
    // Backward needs the inputs' shapes and whether they want a gradient, not the inputs themselves.
    let shapes = xs.map(\.shape), wanted = xs.map(\.requiresGrad)
    return Tensor.record(y, inputs: xs) { gy in
        var offsets = [0]; for c in cs { offsets.append(offsets.last! + c) }
        return cs.enumerated().map { (k, c) -> Tensor? in
            guard wanted[k] else { return nil }
            let g = Tensor(uninitialized: shapes[k])
            for b in 0..<n {
                (g.data + b * c * inner).update(from: gy.data + (b * ctot + offsets[k]) * inner, count: c * inner)
            }
            return g
        }
    }
}

/// Appends `extra` zero channels after the input's channels: (N, C, H, W) -> (N, C + extra, H, W).
public func padChannels(_ x: Tensor, extra: Int) -> Tensor {
    precondition(extra >= 0, "padChannels: negative channel count")
    if extra == 0 { return x }
    var s = x.shape; s[1] = extra
    return concatChannels([x, Tensor(zeros: s)])
}

/// Strided spatial subsampling x[:, :, ::s, ::s] (rows and columns 0, s, 2s, ...): option-A shortcuts.
public func subsample(_ x: Tensor, stride s: Int) -> Tensor {
    precondition(x.rank == 4 && s >= 1, "subsample: input must be (N, C, H, W) and stride >= 1")
    if s == 1 { return x }
    let h = x.shape[2], w = x.shape[3]
    let oh = (h + s - 1) / s, ow = (w + s - 1) / s
    let planes = x.shape[0] * x.shape[1]
    let y = Tensor(uninitialized: [x.shape[0], x.shape[1], oh, ow])
    Threading.parallelFor(planes, minPerThread: 16) { p in
        let src = x.data + p * h * w, dst = y.data + p * oh * ow
        for i in 0..<oh { for j in 0..<ow { dst[i * ow + j] = src[i * s * w + j * s] } }
    }
    let xShape = x.shape  // not x: backward needs only its shape
    return Tensor.record(y, inputs: [x]) { gy in
        let gx = Tensor(zeros: xShape)
        Threading.parallelFor(planes, minPerThread: 16) { p in
            let src = gy.data + p * oh * ow, dst = gx.data + p * h * w
            for i in 0..<oh { for j in 0..<ow { dst[i * s * w + j * s] = src[i * ow + j] } }
        }
        return [gx]
    }
}

/// Rows of x (first dimension) picked by index: (N, ...) -> (M, ...). Backward scatter-adds.
public func gatherRows(_ x: Tensor, _ indices: [Int]) -> Tensor {
    let n = x.shape[0]
    let inner = n == 0 ? 0 : x.count / n
    var s = x.shape; s[0] = indices.count
    let y = Tensor(uninitialized: s)
    for (k, i) in indices.enumerated() {
        precondition(i >= 0 && i < n, "gatherRows: index \(i) out of range 0..<\(n)")
        (y.data + k * inner).update(from: x.data + i * inner, count: inner)
    }
    let xShape = x.shape  // not x: backward needs only its shape
    return Tensor.record(y, inputs: [x]) { gy in
        let gx = Tensor(zeros: xShape)
        for (k, i) in indices.enumerated() {
            let d = gx.data + i * inner, src = gy.data + k * inner
            for j in 0..<inner { d[j] += src[j] }
        }
        return [gx]
    }
}

/// Scatters the rows of x (M, ...) into a zero tensor of `rows` rows at `indices` (adding duplicates).
public func scatterRows(_ x: Tensor, _ indices: [Int], rows: Int) -> Tensor {
    precondition(indices.count == x.shape[0], "scatterRows: \(indices.count) indices for \(x.shape[0]) rows")
    let inner = x.shape[0] == 0 ? 0 : x.count / x.shape[0]
    var s = x.shape; s[0] = rows
    let y = Tensor(zeros: s)
    for (k, i) in indices.enumerated() {
        precondition(i >= 0 && i < rows, "scatterRows: index \(i) out of range 0..<\(rows)")
        let d = y.data + i * inner, src = x.data + k * inner
        for j in 0..<inner { d[j] += src[j] }
    }
    let xShape = x.shape  // not x: backward needs only its shape
    return Tensor.record(y, inputs: [x]) { gy in
        let gx = Tensor(uninitialized: xShape)
        for (k, i) in indices.enumerated() { (gx.data + k * inner).update(from: gy.data + i * inner, count: inner) }
        return [gx]
    }
}

/// (N, C, H, W) -> (N, H, W, C): per-location channel vectors (the RPN's per-anchor outputs).
public func channelsLast(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "channelsLast: input must be (N, C, H, W), got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3]
    let y = Tensor(uninitialized: [n, x.shape[2], x.shape[3], c])
    for b in 0..<n {
        let src = x.data + b * c * hw, dst = y.data + b * c * hw
        for ch in 0..<c { for p in 0..<hw { dst[p * c + ch] = src[ch * hw + p] } }
    }
    let xShape = x.shape  // not x: backward needs only its shape
    return Tensor.record(y, inputs: [x]) { gy in
        let gx = Tensor(uninitialized: xShape)
        for b in 0..<n {
            let src = gy.data + b * c * hw, dst = gx.data + b * c * hw
            for ch in 0..<c { for p in 0..<hw { dst[ch * hw + p] = src[p * c + ch] } }
        }
        return [gx]
    }
}

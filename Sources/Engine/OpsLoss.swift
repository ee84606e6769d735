import Foundation

/// Row-wise log-softmax of a 2-D tensor (N, K) into `out` (computed stably, in Double for the sum).
private func logSoftmaxRows(_ x: UnsafePointer<Float>, n: Int, k: Int, _ out: UnsafeMutablePointer<Float>) {
    for i in 0..<n {
        let row = x + i * k, o = out + i * k
        var mx = -Float.infinity
        for j in 0..<k { mx = max(mx, row[j]) }
        var s: Double = 0
        for j in 0..<k { s += Foundation.exp(Double(row[j] - mx)) }
        let lse = mx + Float(Foundation.log(s))
        for j in 0..<k { o[j] = row[j] - lse }
    }
}

/// log_softmax over dimension 1 of (N, K).
public func logSoftmax(_ x: Tensor) -> Tensor {
    precondition(x.rank == 2, "logSoftmax: input must be (N, K), got \(x.shape)")
    let n = x.shape[0], k = x.shape[1]
    let y = Tensor(uninitialized: x.shape)
    logSoftmaxRows(x.data, n: n, k: k, y.data)
    return Tensor.record(y, inputs: [x]) { gy in
        // gx = gy - softmax * sum(gy)
        let gx = Tensor(uninitialized: x.shape)
        for i in 0..<n {
            var s: Float = 0
            for j in 0..<k { s += gy.data[i * k + j] }
            for j in 0..<k { gx.data[i * k + j] = gy.data[i * k + j] - Foundation.exp(y.data[i * k + j]) * s }
        }
        return [gx]
    }
}

/// softmax over dimension 1 of (N, K).
public func softmax(_ x: Tensor) -> Tensor {
    precondition(x.rank == 2, "softmax: input must be (N, K), got \(x.shape)")
    let n = x.shape[0], k = x.shape[1]
    let y = Tensor(uninitialized: x.shape)
    logSoftmaxRows(x.data, n: n, k: k, y.data)
    for i in 0..<y.count { y.data[i] = Foundation.exp(y.data[i]) }
    return Tensor.record(y, inputs: [x]) { gy in
        // gx = y * (gy - sum(gy * y))
        let gx = Tensor(uninitialized: x.shape)
        for i in 0..<n {
            var s: Float = 0
            for j in 0..<k { s += gy.data[i * k + j] * y.data[i * k + j] }
            for j in 0..<k { gx.data[i * k + j] = y.data[i * k + j] * (gy.data[i * k + j] - s) }
        }
        return [gx]
    }
}

/// Mean cross-entropy of logits (N, K) against class indices, skipping targets equal to `ignoreIndex`
/// (as `torch.nn.functional.cross_entropy`). When every target is ignored the loss is 0 with a zero
/// gradient (torch would return NaN; a detector batch with no sampled regions must not poison training).
public func crossEntropy(_ logits: Tensor, targets: [Int], ignoreIndex: Int? = nil) -> Tensor {
    precondition(logits.rank == 2, "crossEntropy: logits must be (N, K), got \(logits.shape)")
    let n = logits.shape[0], k = logits.shape[1]
    precondition(targets.count == n, "crossEntropy: \(targets.count) targets for \(n) rows")
    let logp = Tensor(uninitialized: logits.shape)
    logSoftmaxRows(logits.data, n: n, k: k, logp.data)
    var total: Double = 0
    var valid = 0
    for (i, t) in targets.enumerated() {
        if let ignoreIndex, t == ignoreIndex { continue }
        precondition(t >= 0 && t < k, "crossEntropy: target \(t) out of range 0..<\(k)")
        total -= Double(logp.data[i * k + t])
        valid += 1
    }
    let y = Tensor([valid == 0 ? 0 : Float(total / Double(valid))], shape: [])
    return Tensor.record(y, inputs: [logits]) { gy in
        let gx = Tensor(zeros: logits.shape)
        guard valid > 0 else { return [gx] }
        let f = gy.data[0] / Float(valid)
        for (i, t) in targets.enumerated() {
            if let ignoreIndex, t == ignoreIndex { continue }
            for j in 0..<k { gx.data[i * k + j] = Foundation.exp(logp.data[i * k + j]) * f }
            gx.data[i * k + t] -= f
        }
        return [gx]
    }
}

/// Mean binary cross-entropy with logits: mean(max(x, 0) - x * t + log(1 + exp(-|x|))).
public func binaryCrossEntropyWithLogits(_ logits: Tensor, targets: Tensor) -> Tensor {
    precondition(
        logits.count == targets.count, "binaryCrossEntropyWithLogits: \(logits.count) logits, \(targets.count) targets")
    let n = logits.count
    var total: Double = 0
    for i in 0..<n {
        let x = logits.data[i], t = targets.data[i]
        total += Double(max(x, 0) - x * t + Foundation.log1p(Foundation.exp(-abs(x))))
    }
    let y = Tensor([n == 0 ? 0 : Float(total / Double(n))], shape: [])
    return Tensor.record(y, inputs: [logits]) { gy in
        let gx = Tensor(uninitialized: logits.shape)
        let f = n == 0 ? 0 : gy.data[0] / Float(n)
        for i in 0..<n {
            let x = logits.data[i]
            let s = x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))
            gx.data[i] = (s - targets.data[i]) * f
        }
        return [gx]
    }
}

public enum Reduction: Sendable { case sum, mean }

/// Smooth L1 (Huber-like, torch's `smooth_l1_loss`): 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta.
/// beta = 0 gives the L1 loss.
public func smoothL1(_ input: Tensor, _ target: Tensor, beta: Float, reduction: Reduction = .sum) -> Tensor {
    precondition(input.count == target.count, "smoothL1: \(input.count) inputs, \(target.count) targets")
    precondition(beta >= 0, "smoothL1: beta must be non-negative")
    let n = input.count
    var total: Double = 0
    for i in 0..<n {
        let d = abs(input.data[i] - target.data[i])
        total += Double(d < beta ? 0.5 * d * d / beta : d - 0.5 * beta)
    }
    let div: Float = reduction == .mean ? Float(max(n, 1)) : 1
    let y = Tensor([Float(total) / div], shape: [])
    return Tensor.record(y, inputs: [input, target]) { gy in
        let g = Tensor(uninitialized: input.shape)
        let f = gy.data[0] / div
        for i in 0..<n {
            let d = input.data[i] - target.data[i]
            let v: Float = abs(d) < beta ? d / beta : (d > 0 ? 1 : (d < 0 ? -1 : 0))
            g.data[i] = v * f
        }
        return [input.requiresGrad ? g : nil, target.requiresGrad ? map(g) { -$0 } : nil]
    }
}

private func map(_ t: Tensor, _ f: (Float) -> Float) -> Tensor {
    let y = Tensor(uninitialized: t.shape)
    for i in 0..<t.count { y.data[i] = f(t.data[i]) }
    return y
}

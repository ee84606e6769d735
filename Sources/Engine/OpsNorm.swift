import Foundation
import CKernels

/// Batch normalisation over (N, C, H, W) with per-channel `weight` and `bias` (C).
///
/// - training: normalise with the batch statistics and update `runningMean`/`runningVar` in place exactly
///   like `torch.nn.BatchNorm2d` (`running = (1 - momentum) * running + momentum * stat`, with the unbiased
///   batch variance for the running variance).
/// - otherwise: normalise with the running statistics. With `weight`/`bias` not requiring gradients this is
///   the frozen batch norm of detection fine-tuning: a fixed per-channel affine map.
public func batchNorm2d(
    _ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
    training: Bool, momentum: Float = 0.1, eps: Float = 1e-5, relu: Bool = false
) -> Tensor {
    precondition(x.rank == 4 || x.rank == 2, "batchNorm2d: input must be (N, C, H, W) or (N, C), got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], hw = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    precondition(
        weight.count == c && bias.count == c && runningMean.count == c && runningVar.count == c,
        "batchNorm2d: input has \(c) channels but parameters have \(weight.count)")
    let mean = Tensor(uninitialized: [c]), invstd = Tensor(uninitialized: [c])
    let sync = training ? SyncBatchNorm.active : nil
    var m = n * hw
    if training {
        let variance = Tensor(uninitialized: [c])
        if let sync {
            // Statistics of the global batch: per-channel sums and sums of squares, and the count, summed
            // over the ranks in one all-reduce.
            var sums = [Double](repeating: 0, count: 2 * c + 1)
            sums.withUnsafeMutableBufferPointer { s in
                NormKernels.channelSums(x.data, n: n, c: c, hw: hw, sums: s.baseAddress!)
                s[2 * c] = Double(m)
                sync.allReduceSum(s.baseAddress!, count: s.count)
            }
            m = Int(sums[2 * c])
            for i in 0..<c {
                let mu = sums[i] / Double(m)
                mean.data[i] = Float(mu)
                variance.data[i] = Float(max(sums[c + i] / Double(m) - mu * mu, 0))
            }
        } else {
            NormKernels.channelStats(x.data, n: n, c: c, hw: hw, mean: mean.data, variance: variance.data)
        }
        precondition(m > 1, "batchNorm2d: training needs more than one value per channel, got input \(x.shape)")
        let unbias = Float(m) / Float(m - 1)
        for i in 0..<c {
            invstd.data[i] = 1 / (variance.data[i] + eps).squareRoot()
            runningMean.data[i] = (1 - momentum) * runningMean.data[i] + momentum * mean.data[i]
            runningVar.data[i] = (1 - momentum) * runningVar.data[i] + momentum * variance.data[i] * unbias
        }
    } else {
        for i in 0..<c {
            mean.data[i] = runningMean.data[i]
            invstd.data[i] = 1 / (runningVar.data[i] + eps).squareRoot()
        }
    }
    let batchCount = m
    let scale = Tensor(uninitialized: [c]), shift = Tensor(uninitialized: [c])
    for i in 0..<c {
        scale.data[i] = weight.data[i] * invstd.data[i]
        shift.data[i] = bias.data[i] - mean.data[i] * scale.data[i]
    }
    let y = Tensor(uninitialized: x.shape)
    NormKernels.affine(x.data, n: n, c: c, hw: hw, scale: scale.data, shift: shift.data, y.data, relu: relu)
    // Backward needs the output only as the ReLU's mask: without a fused ReLU the closure must not capture
    // it, so that the output is freed as soon as the forward pass is done with it (the last batch norm of a
    // residual block feeds the residual sum and nothing else).
    let reluOutput: Tensor? = relu ? y : nil
    return Tensor.record(y, inputs: [x, weight, bias]) { gy in
        let sumGy = Tensor(uninitialized: [c]), sumGyXhat = Tensor(uninitialized: [c])
        let yMask: UnsafePointer<Float>? = reluOutput.map { UnsafePointer($0.data) }
        NormKernels.gradSums(
            x.data, gy.data, n: n, c: c, hw: hw, mean: mean.data, invstd: invstd.data,
            sumGy: sumGy.data, sumGyXhat: sumGyXhat.data, reluOutput: yMask)
        var gx: Tensor? = nil
        if x.requiresGrad {
            let out = Tensor(uninitialized: x.shape)
            if training {
                // gx = gamma * invstd * (gy - mean(gy) - xhat * mean(gy * xhat)), the means over the global
                // batch under sync BN (weight and bias keep their local sums: the gradient all-reduce adds them).
                var globalSums = (sumGy, sumGyXhat)
                if let sync {
                    let both = Tensor(uninitialized: [2 * c])
                    both.data.update(from: sumGy.data, count: c)
                    (both.data + c).update(from: sumGyXhat.data, count: c)
                    sync.allReduceSum(both.data, count: 2 * c)
                    globalSums = (
                        Tensor(Array(UnsafeBufferPointer(start: both.data, count: c)), shape: [c]),
                        Tensor(Array(UnsafeBufferPointer(start: both.data + c, count: c)), shape: [c])
                    )
                }
                let (sumGy, sumGyXhat) = globalSums
                let total = Float(batchCount)
                Threading.parallelFor(n * c, minPerThread: 8) { idx in
                    let ch = idx % c
                    let k = weight.data[ch] * invstd.data[ch]
                    let mg = sumGy.data[ch] / total, mgx = sumGyXhat.data[ch] / total
                    let mu = mean.data[ch], isd = invstd.data[ch]
                    let off = idx * hw
                    ck_bn_grad(
                        gy.data + off, yMask.map { $0 + off }, x.data + off, out.data + off, hw, k, mg, mu, isd * mgx)
                }
            } else if let ym = yMask {
                Threading.parallelFor(n * c, minPerThread: 8) { idx in
                    let off = idx * hw
                    ck_scale_where_positive(gy.data + off, ym + off, out.data + off, hw, scale.data[idx % c])
                }
            } else {
                let zero = [Float](repeating: 0, count: c)
                zero.withUnsafeBufferPointer { z in
                    NormKernels.affine(gy.data, n: n, c: c, hw: hw, scale: scale.data, shift: z.baseAddress!, out.data)
                }
            }
            gx = out
        }
        return [gx, weight.requiresGrad ? sumGyXhat : nil, bias.requiresGrad ? sumGy : nil]
    }
}

/// A fixed per-channel affine map y = x * scale[c] + shift[c] (frozen batch norm folded to two vectors).
/// Gradients flow to x only.
public func channelAffine(_ x: Tensor, scale: Tensor, shift: Tensor) -> Tensor {
    let n = x.shape[0], c = x.shape[1], hw = x.count / max(n * c, 1)
    precondition(scale.count == c && shift.count == c, "channelAffine: \(c) channels, \(scale.count) scales")
    let y = Tensor(uninitialized: x.shape)
    NormKernels.affine(x.data, n: n, c: c, hw: hw, scale: scale.data, shift: shift.data, y.data)
    return Tensor.record(y, inputs: [x]) { gy in
        let gx = Tensor(uninitialized: x.shape)
        let zero = [Float](repeating: 0, count: c)
        zero.withUnsafeBufferPointer { z in
            NormKernels.affine(gy.data, n: n, c: c, hw: hw, scale: scale.data, shift: z.baseAddress!, gx.data)
        }
        return [gx]
    }
}

/// In place and outside autograd (inference only): y[n, c, ...] = y * scale[c] + shift[c], then
/// max(0, .) when `relu`. Batch norm folded into the preceding convolution's output this way costs one
/// pass over the output (the pass a bias would cost) instead of rescaling the weights on every call.
public func channelAffineInPlace(_ y: Tensor, scale: [Float], shift: [Float], relu: Bool) {
    precondition(
        y.rank >= 2 && scale.count == y.shape[1] && shift.count == y.shape[1],
        "channelAffineInPlace: \(scale.count)/\(shift.count) values for shape \(y.shape)")
    precondition(!GradMode.isEnabled || !y.requiresGrad, "channelAffineInPlace: only outside autograd")
    let n = y.shape[0], c = y.shape[1], hw = y.count / max(n * c, 1)
    scale.withUnsafeBufferPointer { s in
        shift.withUnsafeBufferPointer { t in
            NormKernels.affine(
                y.data, n: n, c: c, hw: hw, scale: s.baseAddress!, shift: t.baseAddress!, y.data, relu: relu)
        }
    }
}

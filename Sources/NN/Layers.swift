import Foundation
import Engine

/// He (Kaiming) normal initialisation as in the ResNet paper: std = sqrt(2 / fan), fan_out by default
/// (torchvision's ResNet uses mode="fan_out", nonlinearity="relu").
public func kaimingNormal(_ shape: [Int], fanOut: Bool = true, rng: inout SeededRNG) -> Tensor {
    let receptive = shape.dropFirst(2).reduce(1, *)
    let fan = fanOut ? shape[0] * receptive : shape[1] * receptive
    return Tensor.randn(shape, std: (2 / Float(max(fan, 1))).squareRoot(), rng: &rng)
}

/// 2-D convolution layer (weight OIHW, optional bias), torch's `nn.Conv2d`.
public final class Conv2d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int)

    public init(
        _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
        dilation: Int = 1, bias: Bool = false, rng: inout SeededRNG
    ) {
        weight = kaimingNormal([outChannels, inChannels, kernel, kernel], rng: &rng)
        weight.requiresGrad = true
        self.bias = bias ? Tensor(zeros: [outChannels], requiresGrad: true) : nil
        self.stride = (stride, stride); self.padding = (padding, padding); self.dilation = (dilation, dilation)
        super.init()
    }

    public override var ownParameters: [(String, Tensor)] {
        bias.map { [("weight", weight), ("bias", $0)] } ?? [("weight", weight)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
    }
}

/// Batch normalisation (torch's `nn.BatchNorm2d`: momentum 0.1, eps 1e-5, affine, running stats).
/// In training mode it uses batch statistics and updates the running ones; in evaluation mode, or when
/// `frozen`, it applies the running statistics as a fixed affine map. `frozen` also stops gradients for
/// its weight and bias (the frozen batch norm of detection fine-tuning).
public final class BatchNorm2d: Module {
    public let weight: Tensor, bias: Tensor
    public let runningMean: Tensor, runningVar: Tensor
    public let numBatchesTracked = IntBuffer(0)
    public var momentum: Float = 0.1
    public var eps: Float = 1e-5
    public var frozen = false {
        didSet { weight.requiresGrad = !frozen; bias.requiresGrad = !frozen }
    }

    public init(_ channels: Int) {
        weight = Tensor(repeating: 1, shape: [channels], requiresGrad: true)
        bias = Tensor(zeros: [channels], requiresGrad: true)
        runningMean = Tensor(zeros: [channels])
        runningVar = Tensor(repeating: 1, shape: [channels])
        super.init()
    }

    public override var ownParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }
    public override var ownBuffers: [(String, Tensor)] { [("running_mean", runningMean), ("running_var", runningVar)] }
    public override var ownIntBuffers: [(String, IntBuffer)] { [("num_batches_tracked", numBatchesTracked)] }

    /// Batch norm, then ReLU in the same pass when `relu` (one op on the tape: relu(bn(x))).
    public func callAsFunction(_ x: Tensor, relu: Bool = false) -> Tensor {
        let useBatchStats = training && !frozen
        if useBatchStats { numBatchesTracked.value += 1 }
        return batchNorm2d(
            x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
            training: useBatchStats, momentum: momentum, eps: eps, relu: relu)
    }

    /// The per-channel (scale, shift) of the evaluation-mode map y = x * scale + shift, for folding into
    /// the preceding convolution.
    public func foldedAffine() -> (scale: [Float], shift: [Float]) {
        let c = weight.count
        var s = [Float](repeating: 0, count: c), t = [Float](repeating: 0, count: c)
        for i in 0..<c {
            s[i] = weight.data[i] / (runningVar.data[i] + eps).squareRoot()
            t[i] = bias.data[i] - runningMean.data[i] * s[i]
        }
        return (s, t)
    }
}

/// Fully connected layer, torch's `nn.Linear` (weight (out, in), bias (out), torch's default init).
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout SeededRNG) {
        let bound = 1 / Float(max(inFeatures, 1)).squareRoot()
        weight = Tensor.uniform([outFeatures, inFeatures], -bound, bound, rng: &rng, requiresGrad: true)
        self.bias = bias ? Tensor.uniform([outFeatures], -bound, bound, rng: &rng, requiresGrad: true) : nil
        super.init()
    }

    public override var ownParameters: [(String, Tensor)] {
        bias.map { [("weight", weight), ("bias", $0)] } ?? [("weight", weight)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight, bias: bias) }
}

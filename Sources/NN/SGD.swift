import Foundation
import Engine

/// Stochastic gradient descent with momentum, weight decay and optional Nesterov momentum, with exactly
/// the update rule of `torch.optim.SGD` (dampening 0):
///
///     d = grad + weightDecay * p
///     buf = d                      (first step)       buf = momentum * buf + d   (later steps)
///     d = nesterov ? d + momentum * buf : buf
///     p -= lr * d
///
/// Parameters whose `grad` is nil (frozen, or unused in this step) are skipped, as torch skips them.
public final class SGD {
    public let parameters: [Tensor]
    public var lr: Float
    public var momentum: Float
    public var weightDecay: Float
    public var nesterov: Bool
    /// Momentum buffers, one per parameter (nil until the parameter's first update).
    public private(set) var momentumBuffers: [Tensor?]

    public init(parameters: [Tensor], lr: Float, momentum: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(!nesterov || momentum > 0, "SGD: Nesterov momentum requires a positive momentum")
        self.parameters = parameters
        self.lr = lr; self.momentum = momentum; self.weightDecay = weightDecay; self.nesterov = nesterov
        momentumBuffers = Array(repeating: nil, count: parameters.count)
    }

    /// Applies one update to every parameter that has a gradient.
    public func step() {
        for (k, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let n = p.count
            let pd = p.data, gd = g.data
            let wd = weightDecay, mom = momentum, lr = self.lr
            if mom == 0 {
                for i in 0..<n { pd[i] -= lr * (gd[i] + wd * pd[i]) }
                continue
            }
            if let buf = momentumBuffers[k] {
                let b = buf.data
                for i in 0..<n {
                    let d = gd[i] + wd * pd[i]
                    b[i] = mom * b[i] + d
                    pd[i] -= lr * (nesterov ? d + mom * b[i] : b[i])
                }
            } else {
                let buf = Tensor(uninitialized: p.shape)
                let b = buf.data
                for i in 0..<n {
                    let d = gd[i] + wd * pd[i]
                    b[i] = d
                    pd[i] -= lr * (nesterov ? d + mom * d : d)
                }
                momentumBuffers[k] = buf
            }
        }
    }

    /// Clears the gradients of all parameters.
    public func zeroGrad() { for p in parameters { p.grad = nil } }

    /// Restores momentum buffers (for exact resume). Nil entries mean "no update yet".
    public func setMomentumBuffers(_ buffers: [Tensor?]) {
        precondition(
            buffers.count == parameters.count,
            "SGD: \(buffers.count) momentum buffers for \(parameters.count) parameters")
        momentumBuffers = buffers
    }
}

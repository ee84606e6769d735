import Foundation

/// Global autograd switch. In inference mode nothing is recorded, so intermediate tensors are freed as soon
/// as the last reference to them goes away.
public enum GradMode {
    nonisolated(unsafe) public static var isEnabled = true

    /// Runs `body` with recording switched off (like `torch.no_grad()` / `inference_mode()`).
    public static func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
        let old = isEnabled
        isEnabled = false
        defer { isEnabled = old }
        return try body()
    }
}

/// One recorded operation: its inputs and a function from the output gradient to the input gradients
/// (nil where an input needs no gradient).
final class GradNode {
    let inputs: [Tensor]
    let backward: (Tensor) -> [Tensor?]
    init(inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.inputs = inputs
        self.backward = backward
    }
}

extension Tensor {
    /// Attaches a gradient function to `out` when recording is on and an input needs a gradient.
    /// The closure is called once, with the gradient of the output, during `backward()`.
    @discardableResult
    public static func record(_ out: Tensor, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            out.node = GradNode(inputs: inputs, backward: backward)
        }
        return out
    }

    /// Whether this tensor was produced by a recorded operation.
    public var isLeaf: Bool { node == nil }

    /// Reverse-mode differentiation from this tensor. `gradient` defaults to ones (for a scalar loss).
    /// Gradients accumulate into `grad` of every leaf that requires one. The graph is released afterwards.
    public func backward(_ gradient: Tensor? = nil) {
        let seed = gradient ?? Tensor(repeating: 1, shape: shape)
        precondition(seed.count == count, "backward: gradient shape \(seed.shape) does not match \(shape)")
        guard requiresGrad else { return }

        // Topological order by iterative depth-first search.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if !visited.insert(ObjectIdentifier(t)).inserted { continue }
            stack.append((t, true))
            if let node = t.node {
                for inp in node.inputs where inp.requiresGrad && !visited.contains(ObjectIdentifier(inp)) {
                    stack.append((inp, false))
                }
            }
        }

        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        GradMode.withoutGrad {
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                if let node = t.node {
                    let inputGrads = node.backward(g)
                    precondition(inputGrads.count == node.inputs.count, "backward: gradient count mismatch")
                    for (inp, gi) in zip(node.inputs, inputGrads) {
                        guard inp.requiresGrad, let gi else { continue }
                        precondition(
                            gi.count == inp.count,
                            "backward: gradient of shape \(gi.shape) for input of shape \(inp.shape)")
                        let key = ObjectIdentifier(inp)
                        if let existing = grads[key] {
                            // Never accumulate in place: gradients may be shared between inputs.
                            let sum = Tensor(uninitialized: inp.shape)
                            let s = sum.data, a = existing.data, b = gi.data
                            for i in 0..<sum.count { s[i] = a[i] + b[i] }
                            grads[key] = sum
                        } else {
                            grads[key] = gi
                        }
                    }
                    t.node = nil
                } else if t.requiresGrad {
                    if let existing = t.grad {
                        existing.addInPlace(g)
                    } else {
                        let own = Tensor(uninitialized: t.shape)
                        own.data.update(from: g.data, count: g.count)
                        t.grad = own
                    }
                }
            }
        }
    }
}

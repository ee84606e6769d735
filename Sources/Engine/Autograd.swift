import Foundation
import CKernels

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

/// Where an input's gradient goes: the operation that produced it, a leaf tensor that accumulates a
/// gradient (a parameter, or an input the caller marked), or nowhere.
enum GradEdge {
    case node(GradNode)
    case leaf(Tensor)
    case none
}

/// One recorded operation: where its inputs' gradients go and a function from the output gradient to the
/// input gradients (nil where an input needs no gradient).
///
/// A node does not hold its input tensors, only the operations that produced them: an intermediate result
/// stays in memory until backward only if some backward function captured it (a convolution its input, a
/// ReLU its output), and is freed as soon as the forward pass drops it otherwise (the output of a batch
/// norm feeding a residual sum, of a downsample branch, ...). Each node's function and edges are released
/// as soon as backward has used them.
final class GradNode {
    private(set) var inputs: [GradEdge]
    /// Element counts of the inputs, to check the gradients a backward function returns.
    let inputCounts: [Int]
    private(set) var backward: ((Tensor) -> [Tensor?])?
    /// The tensor this node produced, while it exists (its `node` is cleared once backward ran).
    weak var output: Tensor?
    /// Its shape: the shape of the gradient summed for it when several consumers send one.
    let outputShape: [Int]

    init(inputs: [Tensor], output: Tensor, backward: @escaping (Tensor) -> [Tensor?]) {
        self.output = output
        self.outputShape = output.shape
        self.inputs = inputs.map { t in
            guard t.requiresGrad else { return .none }
            if let n = t.node { return .node(n) }
            return .leaf(t)
        }
        self.inputCounts = inputs.map(\.count)
        self.backward = backward
    }

    /// Runs the backward function once and releases it (and everything it captured) with the edges.
    func run(_ gradient: Tensor) -> (edges: [GradEdge], grads: [Tensor?]) {
        let grads = backward.map { $0(gradient) } ?? []
        let edges = inputs
        backward = nil
        inputs = []
        output?.node = nil
        return (edges, grads)
    }
}

extension Tensor {
    /// Attaches a gradient function to `out` when recording is on and an input needs a gradient.
    /// The closure is called once, with the gradient of the output, during `backward()`.
    @discardableResult
    public static func record(_ out: Tensor, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            out.node = GradNode(inputs: inputs, output: out, backward: backward)
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
        guard let root = node else {
            accumulate(seed)
            return
        }

        // Topological order of the nodes by iterative depth-first search.
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Bool)] = [(root, false)]
        while let (n, expanded) = stack.popLast() {
            if expanded { order.append(n); continue }
            if !visited.insert(ObjectIdentifier(n)).inserted { continue }
            stack.append((n, true))
            for case .node(let m) in n.inputs where !visited.contains(ObjectIdentifier(m)) { stack.append((m, false)) }
        }

        // Gradients waiting for a node or a leaf; leaves in the order they were first reached.
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
        var leaves: [Tensor] = []
        func add(_ key: ObjectIdentifier, _ g: Tensor, shape: [Int]) {
            if let existing = grads[key] {
                // Never accumulate in place: gradients may be shared between inputs.
                let sum = Tensor(uninitialized: shape)
                ck_map2(Int32(CK_OP_ADD), existing.data, g.data, sum.data, sum.count)
                grads[key] = sum
            } else {
                grads[key] = g
            }
        }
        GradMode.withoutGrad {
            for n in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(n)) else { continue }
                let counts = n.inputCounts
                let (edges, inputGrads) = n.run(g)
                precondition(inputGrads.count == edges.count, "backward: gradient count mismatch")
                for (k, (edge, gi)) in zip(edges, inputGrads).enumerated() {
                    guard let gi else { continue }
                    precondition(
                        gi.count == counts[k], "backward: gradient of shape \(gi.shape) for an input of \(counts[k])")
                    switch edge {
                    case .node(let m): add(ObjectIdentifier(m), gi, shape: m.outputShape)
                    case .leaf(let t):
                        if grads[ObjectIdentifier(t)] == nil { leaves.append(t) }
                        add(ObjectIdentifier(t), gi, shape: t.shape)
                    case .none: break
                    }
                }
            }
            for t in leaves {
                if let g = grads.removeValue(forKey: ObjectIdentifier(t)) { t.accumulate(g) }
            }
        }
        node = nil
    }

    /// grad += g (a copy of g when there is no gradient yet).
    private func accumulate(_ g: Tensor) {
        if let existing = grad {
            existing.addInPlace(g)
        } else {
            let own = Tensor(uninitialized: shape)
            own.data.update(from: g.data, count: g.count)
            grad = own
        }
    }
}

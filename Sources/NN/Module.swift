import Foundation
import Engine

/// An integer buffer of a module (torch's `num_batches_tracked`), stored as an I64 scalar in checkpoints.
public final class IntBuffer {
    public var value: Int64
    public init(_ value: Int64 = 0) { self.value = value }
}

/// Base class of layers and models. Parameter and buffer names come from the module structure and match
/// PyTorch's conventions (`layer1.0.conv1.weight`, `bn1.running_mean`, `bn1.num_batches_tracked`).
///
/// A subclass lists its own tensors in `ownParameters` / `ownBuffers` and its sub-modules in `children`,
/// in the order PyTorch registers them; everything else (recursive names, train/eval switching, freezing,
/// state dicts) follows from these three lists.
open class Module {
    /// Training mode (batch statistics in batch norm) versus evaluation mode.
    public private(set) var training = true

    public init() {}

    open var ownParameters: [(String, Tensor)] { [] }
    open var ownBuffers: [(String, Tensor)] { [] }
    open var ownIntBuffers: [(String, IntBuffer)] { [] }
    open var children: [(String, Module)] { [] }

    /// Called when the mode changes; layers with mode-dependent state override it.
    open func didSetTraining(_ on: Bool) {}

    /// Switches this module and all its descendants to training (`true`) or evaluation mode (dropping any
    /// inference plan built from the weights: they may change before the next inference).
    public func train(_ on: Bool = true) {
        training = on
        inferencePlanState = nil
        didSetTraining(on)
        for (_, c) in children { c.train(on) }
    }

    /// Evaluation mode.
    public func eval() { train(false) }

    /// What `inferencePlan` built (`.some(nil)`: tried, not applicable).
    private var inferencePlanState: AnyObject?? = nil

    /// A structure derived from the current weights for fast inference (packed weights, folded batch norms),
    /// built by `make` at the first call and kept until the mode changes (`train`/`eval`) or
    /// `invalidateInferencePlans` is called; nil when `make` gave nil. Code that writes weights in place while
    /// in evaluation mode must call `invalidateInferencePlans` (checkpoint loading does).
    public func inferencePlan<T: AnyObject>(_ make: () -> T?) -> T? {
        if inferencePlanState == nil { inferencePlanState = .some(make()) }
        return inferencePlanState! as? T
    }

    /// Drops the inference plans of this module and all its descendants.
    public func invalidateInferencePlans() {
        inferencePlanState = nil
        for (_, c) in children { c.invalidateInferencePlans() }
    }

    /// All parameters with their full dotted names, in registration order.
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        var out = ownParameters.map { (prefix + $0.0, $0.1) }
        for (name, c) in children { out += c.namedParameters(prefix: prefix + name + ".") }
        return out
    }

    /// All float buffers (running statistics) with full names.
    public func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
        var out = ownBuffers.map { (prefix + $0.0, $0.1) }
        for (name, c) in children { out += c.namedBuffers(prefix: prefix + name + ".") }
        return out
    }

    /// All integer buffers with full names.
    public func namedIntBuffers(prefix: String = "") -> [(String, IntBuffer)] {
        var out = ownIntBuffers.map { (prefix + $0.0, $0.1) }
        for (name, c) in children { out += c.namedIntBuffers(prefix: prefix + name + ".") }
        return out
    }

    /// Every sub-module with its dotted path ("" for self).
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (name, c) in children {
            out += c.namedModules(prefix: prefix.isEmpty ? name : prefix + "." + name)
        }
        return out
    }

    /// Parameters that currently receive gradients.
    public func trainableParameters() -> [Tensor] { namedParameters().map { $0.1 }.filter { $0.requiresGrad } }

    /// Number of scalar parameters (all, trainable or not).
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.1.count } }

    /// Stops gradients for every parameter of this module and its descendants.
    public func freeze() { for (_, p) in namedParameters() { p.requiresGrad = false; p.grad = nil } }

    /// Lets every parameter of this module and its descendants receive gradients again.
    public func unfreeze() { for (_, p) in namedParameters() { p.requiresGrad = true } }

    /// Clears the gradients of all parameters.
    public func zeroGrad() { for (_, p) in namedParameters() { p.grad = nil } }
}

/// A list of modules applied in order, named "0", "1", ... as torch's `nn.Sequential`.
public final class Sequential: Module {
    public let layers: [Module]
    public init(_ layers: [Module]) { self.layers = layers; super.init() }
    public override var children: [(String, Module)] { layers.enumerated().map { (String($0.offset), $0.element) } }
}

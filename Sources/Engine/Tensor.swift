import Foundation
import CKernels

/// A dense, contiguous, row-major Float32 tensor (NCHW for images) that can take part in autograd.
///
/// Tensors are reference types: a parameter is one object whose `grad` accumulates across backward passes.
/// Differentiable operations (see the `Ops*.swift` files) record how to propagate gradients when
/// `GradMode.isEnabled` and at least one input `requiresGrad`.
public final class Tensor: CustomStringConvertible {
    public let shape: [Int]
    public let storage: Storage
    /// Whether gradients flow into this tensor. For parameters this is the "trainable" switch: a frozen
    /// parameter (`requiresGrad = false`) gets no gradient and its gradient is never computed.
    public var requiresGrad: Bool
    /// Accumulated gradient (leaf tensors only), same shape as the tensor.
    public var grad: Tensor?
    /// The recorded operation that produced this tensor (nil for leaves and in inference mode).
    var node: GradNode?

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    @inlinable public var data: UnsafeMutablePointer<Float> { storage.base }

    /// A new zero-filled tensor.
    public init(zeros shape: [Int], requiresGrad: Bool = false) {
        Tensor.checkShape(shape)
        self.shape = shape
        self.storage = Storage(count: shape.reduce(1, *))
        self.requiresGrad = requiresGrad
    }

    /// A new tensor whose contents the caller will overwrite entirely.
    public init(uninitialized shape: [Int]) {
        Tensor.checkShape(shape)
        self.shape = shape
        self.storage = Storage(count: shape.reduce(1, *), zeroed: false)
        self.requiresGrad = false
    }

    /// A tensor holding `values` (row-major) with the given shape.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        let n = shape.reduce(1, *)
        precondition(values.count == n, "Tensor: \(values.count) values do not fill shape \(shape) (\(n) elements)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: n) }
        self.requiresGrad = requiresGrad
    }

    /// A tensor filled with one value.
    public convenience init(repeating value: Float, shape: [Int], requiresGrad: Bool = false) {
        self.init(uninitialized: shape)
        data.update(repeating: value, count: count)
        self.requiresGrad = requiresGrad
    }

    /// A view with another shape over the same storage (no copy). Not recorded for autograd: use `reshaped`.
    init(viewing storage: Storage, shape: [Int]) {
        Tensor.checkShape(shape)
        precondition(
            shape.reduce(1, *) == storage.count,
            "reshape: shape \(shape) has \(shape.reduce(1, *)) elements, tensor has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = false
    }

    private static func checkShape(_ shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
    }

    /// The values as a Swift array (row-major).
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// The single value of a one-element tensor.
    public func item() -> Float {
        precondition(count == 1, "item(): tensor of shape \(shape) has \(count) elements")
        return data[0]
    }

    /// A deep copy that does not take part in autograd.
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// A tensor sharing this one's storage but detached from the graph.
    public func detached() -> Tensor { Tensor(viewing: storage, shape: shape) }

    /// Size of dimension `i` (negative counts from the end).
    public func size(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    public var description: String {
        let preview = scalars.prefix(8).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", ..." : "")])"
    }

    // MARK: - In-place helpers (not recorded; for optimizers, gradient accumulation, initialisation)

    /// self += other * alpha
    public func addInPlace(_ other: Tensor, alpha: Float = 1) {
        precondition(other.count == count, "addInPlace: shapes \(shape) and \(other.shape) differ")
        let a = data, b = other.data
        if alpha == 1 { ck_add_inplace(a, b, count); return }
        for i in 0..<count { a[i] += alpha * b[i] }
    }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    public func copyFrom(_ other: Tensor) {
        precondition(other.count == count, "copyFrom: shapes \(shape) and \(other.shape) differ")
        data.update(from: other.data, count: count)
    }

    /// Maximum absolute difference to another tensor of the same size.
    public func maxAbsDiff(_ other: Tensor) -> Float {
        precondition(other.count == count, "maxAbsDiff: shapes \(shape) and \(other.shape) differ")
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(data[i] - other.data[i])) }
        return m
    }

    /// Clears the gradient.
    public func zeroGrad() { grad = nil }
}

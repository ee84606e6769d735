import Foundation
import XCTest
import Engine
import NN
import TestSupport

func pair(_ v: Any?) -> (Int, Int) {
    let a = v as! [Int]
    return (a[0], a[1])
}

/// Checks the analytic gradients of `f` against central finite differences of L = sum(f(x) * r)
/// for a fixed random projection r, on up to `samples` random elements of every input that requires grad.
/// The loss is accumulated in Double; eps and tolerances suit Float32 smooth functions.
func gradCheck(
    _ inputs: [Tensor], eps: Float = 1e-2, rtol: Float = 2e-2, atol: Float = 2e-3, samples: Int = 12,
    seed: UInt64 = 7, file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor
) {
    var rng = SeededRNG(seed: seed)
    for t in inputs { t.grad = nil }
    let y0 = f(inputs)
    let r = Tensor.randn(y0.shape, rng: &rng)
    func loss(_ y: Tensor) -> Double {
        var s: Double = 0
        for i in 0..<y.count { s += Double(y.data[i]) * Double(r.data[i]) }
        return s
    }
    sum(y0 * r).backward()
    for (k, x) in inputs.enumerated() where x.requiresGrad {
        guard let g = x.grad else { XCTFail("input \(k) got no gradient", file: file, line: line); continue }
        let picks = x.count <= samples ? Array(0..<x.count) : (0..<samples).map { _ in rng.int(below: x.count) }
        for i in picks {
            let old = x.data[i]
            x.data[i] = old + eps
            let lp = GradMode.withoutGrad { loss(f(inputs)) }
            x.data[i] = old - eps
            let lm = GradMode.withoutGrad { loss(f(inputs)) }
            x.data[i] = old
            let num = Float((lp - lm) / Double(2 * eps))
            let ana = g.data[i]
            XCTAssertLessThanOrEqual(
                abs(num - ana), rtol * max(abs(num), abs(ana)) + atol,
                "input \(k) element \(i): numeric \(num) vs analytic \(ana)", file: file, line: line)
        }
    }
}

/// A tensor of random values whose elements are pairwise at least `gap` apart in rank order, so that
/// max pooling and ReLU have no ties or kinks within a finite-difference step.
func spreadValues(_ shape: [Int], gap: Float = 0.05, rng: inout SeededRNG, requiresGrad: Bool = true) -> Tensor {
    let n = shape.reduce(1, *)
    let perm = rng.permutation(n)
    let vals = perm.map { (Float($0) - Float(n) / 2) * gap + 0.013 }
    return Tensor(vals, shape: shape, requiresGrad: requiresGrad)
}

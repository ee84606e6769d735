import XCTest
import TestSupport
import Engine
import CKernels

/// The graph holds only what backward needs: an intermediate result that no backward function reads is freed
/// as soon as the forward pass drops it, one that is read (a ReLU's output, a convolution's input) lives until
/// backward has used it, and the gradients are the same either way.
final class AutogradMemoryTests: XCTestCase {
    struct Params {
        let w = Tensor([1.5, -0.5, 2], shape: [3], requiresGrad: true)
        let b = Tensor([0.1, 0.2, -0.3], shape: [3], requiresGrad: true)
        let rm = Tensor(zeros: [3]), rv = Tensor(repeating: 1, shape: [3])
    }

    /// bn(x) (no ReLU) + relu(bn(x)), as a residual block joins its branches; returns the loss.
    func forward(_ x: Tensor, _ p: Params, keep: inout [Tensor], onPlain: (Tensor) -> Void, onRelu: (Tensor) -> Void)
        -> Tensor
    {
        let plain = batchNorm2d(x, weight: p.w, bias: p.b, runningMean: p.rm, runningVar: p.rv, training: true)
        let withRelu = batchNorm2d(
            x, weight: p.w, bias: p.b, runningMean: p.rm, runningVar: p.rv, training: true, relu: true)
        onPlain(plain)
        onRelu(withRelu)
        keep.append(plain)
        let y = addRelu(plain, scale(withRelu, 0.5))
        return sum(mul(y, y))
    }

    func testIntermediatesBackwardDoesNotReadAreFreed() {
        var rng = SeededRNG(seed: 3)
        let x0 = Tensor.randn([2, 3, 4, 5], rng: &rng)
        // Reference: every intermediate kept alive by the caller.
        let xa = x0.copy(), pa = Params()
        xa.requiresGrad = true
        var kept: [Tensor] = []
        let lossA = forward(xa, pa, keep: &kept, onPlain: { _ in }, onRelu: { _ in })
        lossA.backward()

        // The same computation, the caller keeping nothing.
        let xb = x0.copy(), pb = Params()
        xb.requiresGrad = true
        weak var plain: Tensor?
        weak var relu: Tensor?
        var none: [Tensor] = []
        let lossB = forward(xb, pb, keep: &none, onPlain: { plain = $0 }, onRelu: { relu = $0 })
        none.removeAll()
        XCTAssertNil(plain, "the batch norm without ReLU is read by no backward function: freed")
        XCTAssertNotNil(relu, "the fused ReLU's output is its backward mask: kept until backward")
        lossB.backward()
        XCTAssertNil(relu, "released once backward ran")
        XCTAssertEqual(lossA.item(), lossB.item())
        XCTAssertEqual(xa.grad!.scalars, xb.grad!.scalars)
        XCTAssertEqual(pa.w.grad!.scalars, pb.w.grad!.scalars)
        XCTAssertEqual(pa.b.grad!.scalars, pb.b.grad!.scalars)
        XCTAssertTrue(lossB.isLeaf, "the graph is released after backward")
    }

    /// A leaf reached along several paths gets the sum of the contributions, added once to its gradient.
    func testLeafGradientsAccumulateOverPathsAndCalls() {
        let x = Tensor([1, -2, 3], shape: [3], requiresGrad: true)
        let y = add(mul(x, x), scale(x, 3))  // dy/dx = 2x + 3
        sum(y).backward()
        XCTAssertEqual(x.grad!.scalars, [5, -1, 9])
        sum(scale(x, 2)).backward()  // accumulates: + 2
        XCTAssertEqual(x.grad!.scalars, [7, 1, 11])
    }
}

/// The block cache's allocator setting: on glibc every block of 128 KB or more is mapped and unmapped, so a
/// block the cache frees leaves the process (glibc's default would keep it resident once it had freed a
/// larger mapped block).
final class AllocatorSettingTests: XCTestCase {
    func testLargeBlocksAreMappedOnGlibc() {
        #if canImport(Glibc)
            XCTAssertEqual(ck_map_large_blocks(128 << 10), 1)
        #else
            XCTAssertEqual(ck_map_large_blocks(128 << 10), 0)
        #endif
    }
}

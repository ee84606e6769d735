import XCTest
import CKernels
import Engine
import TestSupport

/// The memory-bound C kernels (Sources/CKernels/vec.c and the row helpers of im2col.c) on every instruction-set
/// path the CPU can run, against plain scalar loops written here: exact where the kernel promises the scalar
/// result (elementwise maps, batch-norm planes, max pooling's row pass, strided col2im rows), within float
/// rounding of a Double sum for the reductions, and bit-identical from one path to the next (contraction is
/// off in those kernels, so a result does not depend on the CPU it ran on).
final class KernelPathTests: XCTestCase {
    /// Lengths around the 8- and 32-float vector bodies and their tails.
    static let lengths = Array(0...41) + [63, 64, 65, 127, 1000, 1031]

    /// Values in [-2, 2) with a sprinkling of zeros and, when `nans`, NaNs.
    func values(_ n: Int, _ rng: inout SeededRNG, nans: Bool = false) -> [Float] {
        (0..<n).map { _ in
            let r = rng.int(below: 20)
            if r == 0 { return 0 }
            if r == 1 && nans { return .nan }
            return rng.uniform(-2, 2)
        }
    }

    /// Bitwise equality of two arrays (NaN equals NaN of the same bits).
    func sameBits(_ a: [Float], _ b: [Float]) -> Bool { a.map(\.bitPattern) == b.map(\.bitPattern) }

    /// Runs `body` on every path and checks that every path returns the same bits.
    func acrossPaths(_ what: String, _ body: () -> [Float]) {
        var first: (InstructionSet, [Float])?
        onEveryKernelPath { level in
            let r = body()
            if let (l0, r0) = first {
                XCTAssertTrue(sameBits(r, r0), "\(what): \(level) differs from \(l0)")
            } else {
                first = (level, r)
            }
        }
    }

    func testElementwiseMapsAndBatchNormPlanesEqualScalarLoops() {
        var rng = SeededRNG(seed: 5)
        for n in Self.lengths {
            let a = values(n, &rng, nans: true), b = values(n, &rng, nans: true), p = values(n, &rng)
            let (s, t) = (rng.uniform(-2, 2), rng.uniform(-1, 1))
            let refs: [(Int32, (Float, Float) -> Float)] = [
                (Int32(CK_OP_ADD), { $0 + $1 }), (Int32(CK_OP_SUB), { $0 - $1 }), (Int32(CK_OP_MUL), { $0 * $1 }),
                (
                    Int32(CK_OP_ADD_RELU),
                    {
                        let v = $0 + $1; return v > 0 ? v : 0
                    }
                ),
                (Int32(CK_OP_PASS_WHERE_POSITIVE), { $1 > 0 ? $0 : 0 })
            ]
            for (op, f) in refs {
                let ref = zip(a, b).map(f)
                acrossPaths("map2 op \(op) n \(n)") {
                    var y = [Float](repeating: 7, count: n)
                    ck_map2(op, a, b, &y, n)
                    XCTAssertTrue(sameBits(y, ref), "map2 op \(op) n \(n) [\(InstructionSet.active)]")
                    return y
                }
            }
            for relu in [false, true] {
                let ref = a.map { v -> Float in
                    let r = v * s + t; return relu ? (r > 0 ? r : 0) : r
                }
                acrossPaths("affine n \(n)") {
                    var y = [Float](repeating: 7, count: n)
                    ck_affine(a, &y, n, s, t, relu ? 1 : 0)
                    XCTAssertTrue(sameBits(y, ref), "affine relu \(relu) n \(n) [\(InstructionSet.active)]")
                    return y
                }
            }
            let (k, mg, mu, sc) = (rng.uniform(-2, 2), rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1))
            let ga = values(n, &rng), mask = values(n, &rng)
            for masked in [false, true] {
                let ref = (0..<n).map { j -> Float in
                    let g: Float = !masked || mask[j] > 0 ? ga[j] : 0
                    return k * (g - mg - (p[j] - mu) * sc)
                }
                acrossPaths("bn_grad n \(n)") {
                    var q = [Float](repeating: 7, count: n)
                    mask.withUnsafeBufferPointer { m in
                        ck_bn_grad(ga, masked ? m.baseAddress : nil, p, &q, n, k, mg, mu, sc)
                    }
                    XCTAssertTrue(sameBits(q, ref), "bn_grad masked \(masked) n \(n) [\(InstructionSet.active)]")
                    return q
                }
            }
            let refScale = (0..<n).map { j -> Float in mask[j] > 0 ? ga[j] * s : 0 }
            acrossPaths("scale_where_positive n \(n)") {
                var q = [Float](repeating: 7, count: n)
                ck_scale_where_positive(ga, mask, &q, n, s)
                XCTAssertTrue(sameBits(q, refScale), "scale_where_positive n \(n) [\(InstructionSet.active)]")
                return q
            }
            let refAdd = zip(p, ga).map { $0 + $1 }
            acrossPaths("add_inplace n \(n)") {
                var d = p
                ck_add_inplace(&d, ga, n)
                XCTAssertTrue(sameBits(d, refAdd), "add_inplace n \(n) [\(InstructionSet.active)]")
                return d
            }
            // Max pooling's row pass: NaN wins from either side; otherwise the larger value.
            let refMax = zip(a, b).map { (x, y) -> Float in (y > x || y.isNaN) && !x.isNaN ? y : x }
            acrossPaths("max_rows n \(n)") {
                var m = a
                ck_max_rows(&m, b, n)
                XCTAssertTrue(sameBits(m, refMax), "max_rows n \(n) [\(InstructionSet.active)]")
                return m
            }
        }
    }

    func testReductionsAgainstDoubleSums() {
        var rng = SeededRNG(seed: 6)
        for n in Self.lengths {
            let p = values(n, &rng), g = values(n, &rng), y = values(n, &rng)
            let mu = rng.uniform(-1, 1)
            let tol = { (mag: Double) in Float(1e-6 * mag + 1e-30) }
            let sum = p.reduce(0.0) { $0 + Double($1) }, sumAbs = p.reduce(0.0) { $0 + abs(Double($1)) }
            let sq = p.reduce(0.0) { $0 + (Double($1) - Double(mu)) * (Double($1) - Double(mu)) }
            acrossPaths("sum n \(n)") {
                let s1 = ck_sum(p, n), s2 = ck_sum_sqdev(p, n, mu)
                XCTAssertEqual(s1, Float(sum), accuracy: tol(sumAbs), "sum n \(n) [\(InstructionSet.active)]")
                XCTAssertEqual(s2, Float(sq), accuracy: tol(sq) * 4, "sum_sqdev n \(n) [\(InstructionSet.active)]")
                return [s1, s2]
            }
            for masked in [false, true] {
                var sg = 0.0, sd = 0.0, mag = 0.0
                for k in 0..<n where !masked || y[k] > 0 {
                    sg += Double(g[k]); sd += Double(g[k]) * (Double(p[k]) - Double(mu))
                    mag += abs(Double(g[k])) * (1 + abs(Double(p[k]) - Double(mu)))
                }
                acrossPaths("sum_dot n \(n)") {
                    var out: [Float] = [7, 7]
                    y.withUnsafeBufferPointer { yb in ck_sum_dot(g, masked ? yb.baseAddress : nil, p, n, mu, &out) }
                    XCTAssertEqual(out[0], Float(sg), accuracy: tol(mag) * 4, "sum_dot sum n \(n) masked \(masked)")
                    XCTAssertEqual(out[1], Float(sd), accuracy: tol(mag) * 4, "sum_dot dot n \(n) masked \(masked)")
                    return out
                }
            }
        }
    }

    /// col2im's stride-2 row: d[2 * ox] += s[ox] for lo <= ox < hi; every other element keeps its bits.
    func testStridedRowAccumulation() {
        var rng = SeededRNG(seed: 7)
        for hi in [0, 1, 5, 8, 9, 16, 17, 31, 40] {
            for lo in [0, 1, 3, 9] where lo <= hi {
                for sw in [2, 3] {
                    let s = values(hi, &rng)
                    let d0 = values(sw * hi + 3, &rng)
                    var ref = d0
                    for ox in lo..<hi { ref[sw * ox] += s[ox] }
                    acrossPaths("add_row_strided sw \(sw) lo \(lo) hi \(hi)") {
                        var d = d0
                        ck_add_row_strided(&d, s, Int32(sw), Int32(lo), Int32(hi))
                        XCTAssertTrue(
                            sameBits(d, ref), "add_row_strided sw \(sw) lo \(lo) hi \(hi) [\(InstructionSet.active)]")
                        return d
                    }
                }
            }
        }
    }

    /// The peak-FMA loop of the benchmarks counts its operations per level: 12 chains of 4, 8 or 16 lanes,
    /// a multiply and an add per lane and step; its arithmetic stays finite.
    func testPeakLoopCountsItsOperations() {
        onEveryKernelPath { level in
            var sink: Float = .nan
            let lanes: Double = level == .avx512 ? 16 : level == .avx2 ? 8 : 4
            XCTAssertEqual(ck_peak_flops_loop(1000, &sink), 2 * lanes * 12 * 1000, "\(level)")
            XCTAssertTrue(sink.isFinite, "\(level)")
        }
        XCTAssertGreaterThan(InstructionSet.measuredPeakGFLOPS(threads: 1), 0)
    }
}

import Foundation
import XCTest
import Engine

/// Tests of the engine's GEMM (`fastSgemm`, Sources/CKernels) against a Double reference and OpenBLAS, on every
/// instruction-set path the CPU can run (AVX-512, AVX2 + FMA, baseline), forced in turn.
final class FastGEMMTests: XCTestCase {

    /// Small deterministic generator (independent of the engine's RNG).
    struct LCG {
        var s: UInt64
        init(_ seed: UInt64) { s = seed &* 6364136223846793005 &+ 1442695040888963407 }
        mutating func next() -> UInt64 {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            var z = s
            z = (z ^ (z >> 30)) &* 0xbf58476d1ce4e5b9
            z = (z ^ (z >> 27)) &* 0x94d049bb133111eb
            return z ^ (z >> 31)
        }
        /// Uniform in [-1, 1).
        mutating func float() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
        mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(next() % UInt64(r.count)) }
        mutating func pick<T>(_ a: [T]) -> T { a[Int(next() % UInt64(a.count))] }
    }

    struct Case: CustomStringConvertible {
        var transA = false, transB = false
        var m = 1, n = 1, k = 1
        var alpha: Float = 1, beta: Float = 0
        var padA = 0, padB = 0, padC = 0
        var threads = 1
        var lda: Int { (transA ? m : k) + padA }
        var ldb: Int { (transB ? k : n) + padB }
        var ldc: Int { n + padC }
        var description: String {
            "transA \(transA) transB \(transB) M \(m) N \(n) K \(k) alpha \(alpha) beta \(beta) "
                + "lda \(lda) ldb \(ldb) ldc \(ldc) threads \(threads)"
        }
    }

    /// Runs one case with fastSgemm and checks every element of C (padding included) against a Double
    /// reference: |got - ref| <= 1e-5 * (|alpha| * sum_k |a||b| + |beta c|) + 1e-30. With beta == 0, C starts
    /// filled with NaN, which must not leak. Returns the number of bad elements (and records a failure).
    typealias GEMM = (Case, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void

    static let fast: GEMM = { cs, a, b, c in
        fastSgemm(
            transA: cs.transA, transB: cs.transB, m: cs.m, n: cs.n, k: cs.k, alpha: cs.alpha,
            a: a, lda: cs.lda, b: b, ldb: cs.ldb, beta: cs.beta, c: c, ldc: cs.ldc, threads: cs.threads)
    }

    @discardableResult
    func check(
        _ cs: Case, _ rng: inout LCG, gemm: GEMM = FastGEMMTests.fast, report: Bool = true,
        file: StaticString = #filePath, line: UInt = #line
    ) -> Int {
        let (m, n, k) = (cs.m, cs.n, cs.k)
        let (lda, ldb, ldc) = (cs.lda, cs.ldb, cs.ldc)
        let sizeA = max(1, (cs.transA ? k : m) * lda), sizeB = max(1, (cs.transB ? n : k) * ldb)
        let a = (0..<sizeA).map { _ in rng.float() }
        let b = (0..<sizeB).map { _ in rng.float() }
        let c0 = (0..<(m * ldc)).map { _ in rng.float() }
        var c = cs.beta == 0 ? [Float](repeating: .nan, count: m * ldc) : c0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in gemm(cs, pa.baseAddress!, pb.baseAddress!, pc.baseAddress!) }
            }
        }
        var bad = 0
        var firstBad = ""
        for i in 0..<m {
            for j in 0..<ldc {
                let got = c[i * ldc + j]
                if j >= n {  // padding of C: untouched
                    let same = cs.beta == 0 ? got.isNaN : got == c0[i * ldc + j]
                    if !same { bad += 1; if firstBad.isEmpty { firstBad = "padding (\(i), \(j)) changed" } }
                    continue
                }
                var s = 0.0, mag = 0.0
                for p in 0..<k {
                    let av = Double(cs.transA ? a[p * lda + i] : a[i * lda + p])
                    let bv = Double(cs.transB ? b[j * ldb + p] : b[p * ldb + j])
                    s += av * bv
                    mag += abs(av * bv)
                }
                var ref = Double(cs.alpha) * s
                mag *= Double(abs(cs.alpha))
                if cs.beta != 0 {
                    ref += Double(cs.beta) * Double(c0[i * ldc + j])
                    mag += abs(Double(cs.beta) * Double(c0[i * ldc + j]))
                }
                let err = abs(Double(got) - ref)
                if !(err <= 1e-5 * mag + 1e-30) {
                    bad += 1
                    if firstBad.isEmpty { firstBad = "(\(i), \(j)): got \(got), expected \(ref) (scale \(mag))" }
                }
            }
        }
        if bad > 0 && report {
            XCTFail("[\(InstructionSet.active)] \(cs): \(bad) bad elements, first \(firstBad)", file: file, line: line)
        }
        return bad
    }

    /// The checker itself catches wrong products: OpenBLAS passes it, deliberately broken variants do not.
    func testCheckerCatchesErrors() {
        var rng = LCG(9)
        let cs = Case(transA: true, transB: false, m: 37, n: 53, k: 41, alpha: -2, beta: 0.5, padA: 1, padB: 2, padC: 3)
        let blas: GEMM = { cs, a, b, c in
            openBLASSgemm(
                transA: cs.transA, transB: cs.transB, m: cs.m, n: cs.n, k: cs.k, alpha: cs.alpha,
                a: a, lda: cs.lda, b: b, ldb: cs.ldb, beta: cs.beta, c: c, ldc: cs.ldc)
        }
        XCTAssertEqual(check(cs, &rng, gemm: blas), 0)
        XCTAssertEqual(check(cs, &rng), 0)
        var wrongAlpha = cs
        wrongAlpha.alpha = -1.999
        XCTAssertGreaterThan(
            check(cs, &rng, gemm: { _, a, b, c in FastGEMMTests.fast(wrongAlpha, a, b, c) }, report: false), 0)
        var shortK = cs
        shortK.k -= 1
        XCTAssertGreaterThan(
            check(cs, &rng, gemm: { _, a, b, c in FastGEMMTests.fast(shortK, a, b, c) }, report: false), 0)
        let touchesPadding: GEMM = { cs, a, b, c in
            FastGEMMTests.fast(cs, a, b, c)
            c[cs.n] = 0
        }
        XCTAssertGreaterThan(check(cs, &rng, gemm: touchesPadding, report: false), 0)
        var zeroBeta = cs
        zeroBeta.beta = 0
        let readsC: GEMM = { cs, a, b, c in  // beta = 0 computed as 0 * C: NaN leaks
            for i in 0..<cs.m { for j in 0..<cs.n { c[i * cs.ldc + j] *= 0 } }
            var c2 = cs; c2.beta = 1
            FastGEMMTests.fast(c2, a, b, c)
        }
        XCTAssertGreaterThan(check(zeroBeta, &rng, gemm: readsC, report: false), 0)
    }

    func testBackendAvailability() {
        let env = ProcessInfo.processInfo.environment["ENGINE_GEMM"]?.lowercased()
        XCTAssertEqual(GEMMBackend.defaultBackend, env == "openblas" ? .openBLAS : .engine)
        let saved = GEMMBackend.gemmBackend
        defer { GEMMBackend.gemmBackend = saved }
        InstructionSet.forEachRunnable { level in
            GEMMBackend.gemmBackend = .openBLAS
            XCTAssertFalse(GEMMBackend.useEngine(m: 64, n: 64, k: 64))
            GEMMBackend.gemmBackend = .engine
            // The engine's portable baseline loop is never chosen: OpenBLAS runs the products at that level.
            XCTAssertEqual(GEMMBackend.useEngine(m: 64, n: 64, k: 64), level >= .avx2, "\(level)")
            XCTAssertEqual(InstructionSet.active, level)
        }
        XCTAssertGreaterThanOrEqual(currentGEMMThreads(), 1)
    }

    /// The dispatch layer: names round-trip, a cap above the CPU's level gives the CPU's level, the levels
    /// run in turn are exactly those up to the CPU's, and the previous level is restored afterwards.
    func testInstructionSetDispatch() {
        for level in InstructionSet.allCases { XCTAssertEqual(InstructionSet(name: level.description), level) }
        XCTAssertNil(InstructionSet(name: "sse9"))
        XCTAssertEqual(InstructionSet(name: "AVX2"), .avx2)
        let before = InstructionSet.active
        XCTAssertEqual(InstructionSet.runnable.last, InstructionSet.supported)
        XCTAssertEqual(InstructionSet.runnable.first, .baseline)
        var seen: [InstructionSet] = []
        InstructionSet.forEachRunnable { seen.append($0) }
        XCTAssertEqual(seen, InstructionSet.runnable)
        XCTAssertEqual(InstructionSet.active, before)
        defer { InstructionSet.limit(to: before) }
        XCTAssertEqual(InstructionSet.limit(to: .avx512), InstructionSet.supported)
        XCTAssertEqual(InstructionSet.limit(to: .baseline), .baseline)
        if let env = ProcessInfo.processInfo.environment["ENGINE_ISA"], let cap = InstructionSet(name: env) {
            XCTAssertEqual(before, min(cap, InstructionSet.supported))
        }
        XCTAssertTrue(InstructionSet.report.contains("kernels: baseline"), InstructionSet.report)
    }

    /// Every small shape (M, N up to 12, assorted K including 0), all transposes, with NaN-filled C for beta 0.
    func testSmallShapesExhaustive() {
        InstructionSet.forEachRunnable { _ in
            var rng = LCG(1)
            var bad = 0, cases = 0
            defer { if bad <= 20 { XCTAssertEqual(cases, 12 * 12 * 11 * 4) } }
            for m in 1...12 {
                for n in 1...12 {
                    for k in [0, 1, 2, 3, 5, 8, 13, 16, 17, 31, 33] {
                        for t in 0..<4 {
                            var cs = Case(transA: t & 1 != 0, transB: t & 2 != 0, m: m, n: n, k: k)
                            cs.alpha = rng.pick([1, 0.5, -2])
                            cs.beta = rng.pick([0, 1, 0.5, -2])
                            cs.padA = rng.int(0...2); cs.padB = rng.int(0...2); cs.padC = rng.int(0...2)
                            bad += check(cs, &rng)
                            cases += 1
                            if bad > 20 { return }
                        }
                    }
                }
            }
        }
    }

    /// Random shapes from 1 to ~300 (primes, multiples of the kernel tile and their neighbours), all
    /// transposes, leading dimensions above the minimum, alpha / beta in {1, 0, 0.5, -2}, threads 1 and 2.
    func testRandomShapes() {
        InstructionSet.forEachRunnable { _ in
            var rng = LCG(2)
            let special = [
                1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 47, 48, 49, 64, 95, 96, 97, 127, 191, 192, 193, 211, 257, 293
            ]
            var bad = 0
            for it in 0..<260 {
                var cs = Case()
                func dim() -> Int { rng.next() % 3 == 0 ? rng.pick(special) : rng.int(1...300) }
                cs.m = dim(); cs.n = dim(); cs.k = dim()
                if it % 17 == 0 { cs.k = 0 }
                cs.transA = rng.next() & 1 != 0
                cs.transB = rng.next() & 1 != 0
                cs.alpha = rng.pick([1, 0, 0.5, -2])
                cs.beta = rng.pick([1, 0, 0.5, -2])
                cs.padA = rng.pick([0, 0, 1, 5, 16])
                cs.padB = rng.pick([0, 0, 1, 3, 32])
                cs.padC = rng.pick([0, 0, 1, 7])
                cs.threads = it % 2 + 1
                bad += check(cs, &rng)
                if bad > 20 { return }
            }
        }
    }

    /// Products that are one row or one column wide, and long-K ones (several K blocks).
    func testVectorAndLongKShapes() {
        InstructionSet.forEachRunnable { _ in
            var rng = LCG(3)
            let shapes: [(Int, Int, Int)] = [
                (1, 1, 1), (1, 300, 257), (300, 1, 257), (1, 1, 1000), (2, 3, 1500),
                (33, 50, 1200), (1, 1000, 3), (1000, 1, 3), (97, 101, 777)
            ]
            for (m, n, k) in shapes {
                for t in 0..<4 {
                    for threads in [1, 2] {
                        let cs = Case(
                            transA: t & 1 != 0, transB: t & 2 != 0, m: m, n: n, k: k,
                            alpha: rng.pick([1, -2]), beta: rng.pick([0, 1, 0.5]), padA: 1, padB: 2, padC: 3,
                            threads: threads)
                        check(cs, &rng)
                    }
                }
            }
        }
    }

    /// K == 0 and alpha == 0 only scale C by beta (zeros for beta 0, even over NaN).
    func testDegenerate() {
        InstructionSet.forEachRunnable { _ in
            var rng = LCG(4)
            for beta: Float in [0, 1, 0.5, -2] {
                check(Case(m: 5, n: 7, k: 0, alpha: 1, beta: beta, padC: 2), &rng)
                check(Case(m: 70, n: 90, k: 40, alpha: 0, beta: beta, padC: 1, threads: 2), &rng)
            }
            // M == 0 or N == 0 must not touch anything.
            var c: [Float] = [3]
            let a: [Float] = [1], b: [Float] = [1]
            fastSgemm(m: 0, n: 1, k: 1, a: a, lda: 1, b: b, ldb: 1, c: &c, ldc: 1)
            fastSgemm(m: 1, n: 0, k: 1, a: a, lda: 1, b: b, ldb: 1, c: &c, ldc: 1)
            XCTAssertEqual(c, [3])
        }
    }

    /// The conv GEMM shapes (forward, weight gradient with beta = 1, input gradient), 1 and 2 threads,
    /// against OpenBLAS: |fast - openblas| <= 2e-5 * (|alpha| sum_k |a||b| bound) per element, measured with
    /// the row/column magnitude bound sum_k |a_ik| |b_kj| computed in Double on sampled elements.
    func testConvShapesAgainstOpenBLAS() {
        InstructionSet.forEachRunnable { level in
            var rng = LCG(5)
            // (transA, transB, M, N, K, beta)
            var shapes: [(Bool, Bool, Int, Int, Int, Float)] = []
            let fwd = [
                (64, 3136, 576), (128, 784, 1152), (256, 196, 2304), (512, 49, 4608), (256, 196, 1024),
                (1024, 196, 256), (64, 12544, 147), (16, 1024, 144), (32, 256, 288), (64, 64, 576)
            ]
            for (m, n, k) in fwd { shapes.append((false, false, m, n, k, 0)) }
            for (o, l, ckk) in fwd.prefix(4) {
                shapes.append((false, true, o, ckk, l, 1))  // gw (O, CKK) += gy (O, L) cols^T
                shapes.append((true, false, ckk, l, o, 0))  // dcols (CKK, L) = w^T gy
            }
            for (tA, tB, m, n, k, beta) in shapes {
                let lda = tA ? m : k, ldb = tB ? k : n, ldc = n
                let a = (0..<(m * k)).map { _ in rng.float() }
                let b = (0..<(k * n)).map { _ in rng.float() }
                let c0 = (0..<(m * n)).map { _ in rng.float() }
                var ref = c0
                openBLASSgemm(
                    transA: tA, transB: tB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                    beta: beta, c: &ref, ldc: ldc)
                for threads in [1, 2] {
                    var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : c0
                    fastSgemm(
                        transA: tA, transB: tB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: &c, ldc: ldc, threads: threads)
                    // Both results are within float rounding of the exact sum; inputs in [-1, 1) make
                    // sum_k |a||b| <= K, and random signs make the rounding grow like sqrt(K).
                    var worst: Float = 0, worstAt = 0
                    for i in 0..<(m * n) {
                        let d = abs(c[i] - ref[i])
                        if !(d <= worst) { worst = d; worstAt = i }
                    }
                    let bound = 1e-5 * Float(k) / 4 + 1e-5
                    XCTAssertLessThanOrEqual(
                        worst, bound,
                        "[\(level)] transA \(tA) transB \(tB) M \(m) N \(n) K \(k) threads \(threads): "
                            + "max |fast - openblas| \(worst) at \(worstAt)")
                }
                // And an exact check of a few elements against Double.
                var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : c0
                fastSgemm(
                    transA: tA, transB: tB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                    beta: beta, c: &c, ldc: ldc, threads: 2)
                for _ in 0..<64 {
                    let i = rng.int(0...(m - 1)), j = rng.int(0...(n - 1))
                    var s = 0.0, mag = 0.0
                    for p in 0..<k {
                        let av = Double(tA ? a[p * lda + i] : a[i * lda + p]),
                            bv = Double(tB ? b[j * ldb + p] : b[p * ldb + j])
                        s += av * bv; mag += abs(av * bv)
                    }
                    if beta != 0 { s += Double(beta) * Double(c0[i * ldc + j]); mag += abs(Double(c0[i * ldc + j])) }
                    XCTAssertLessThanOrEqual(
                        abs(Double(c[i * ldc + j]) - s), 1e-5 * mag + 1e-30,
                        "[\(level)] M \(m) N \(n) K \(k) element (\(i), \(j))")
                }
            }
        }
    }

    /// Concurrent callers: multi-threaded calls contend for the kernel's thread pool (the losers run on their
    /// own thread) and single-threaded calls run from inside a parallel loop.
    func testConcurrentCallers() {
        let m = 96, n = 200, k = 150
        var rng = LCG(6)
        let a = (0..<(m * k)).map { _ in rng.float() }
        let b = (0..<(k * n)).map { _ in rng.float() }
        var ref = [Float](repeating: 0, count: m * n)
        fastSgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &ref, ldc: n, threads: 1)
        let results = UnsafeMutablePointer<Float>.allocate(capacity: 8 * m * n)
        defer { results.deallocate() }
        results.initialize(repeating: .nan, count: 8 * m * n)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                DispatchQueue.concurrentPerform(iterations: 8) { w in
                    for _ in 0..<20 {
                        fastSgemm(
                            m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n,
                            c: results + w * m * n, ldc: n, threads: w % 2 == 0 ? 2 : 1)
                    }
                }
            }
        }
        for w in 0..<8 {
            var worst: Float = 0
            for i in 0..<(m * n) {
                worst =
                    max(worst, abs(results[w * m * n + i] - ref[i])).isNaN
                    ? .infinity : max(worst, abs(results[w * m * n + i] - ref[i]))
            }
            XCTAssertLessThanOrEqual(worst, 1e-4, "caller \(w) differs from the serial result")
        }
    }
}

import Foundation
import ArgumentParser
import Engine

/// `bench gemm`: GFLOP/s of OpenBLAS and the engine's own GEMM kernels on the convolution shapes (the two in
/// turn in one process, best of several rounds each), and the conv pattern (a parallel im2col-like copy on the engine's
/// threads, then a GEMM) in milliseconds per layer. These used to be opt-in tests; benchmarks live here.
struct GEMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract:
            "GEMM kernels vs OpenBLAS on the conv shapes (GFLOP/s), and the conv pattern mixed with parallel loops.")

    @Option(help: "Interleaved rounds per shape; the best is reported.") var rounds = 9
    @Flag(help: "Only the conv pattern (parallel copy + GEMM), not the per-shape GFLOP/s table.") var mixedOnly = false

    func validate() throws {
        guard (1...1000).contains(rounds) else { throw ValidationError("--rounds \(rounds): give 1 to 1000") }
    }

    func run() throws {
        print(InstructionSet.report)
        if !mixedOnly { shapes() }
        mixed()
    }

    func shapes() {
        // (label, transA, transB, M, N, K, beta, threads)
        var shapes: [(String, Bool, Bool, Int, Int, Int, Float, Int)] = [
            ("square", false, false, 2048, 2048, 2048, 0, 2)
        ]
        let fwd = [
            (64, 3136, 576), (128, 784, 1152), (256, 196, 2304), (512, 49, 4608), (256, 196, 1024),
            (1024, 196, 256), (64, 12544, 147)
        ]
        for (m, n, k) in fwd { shapes.append(("fwd", false, false, m, n, k, 0, 2)) }
        for (m, n, k) in [(16, 1024, 144), (32, 256, 288), (64, 64, 576)] {
            shapes.append(("fwd 1T", false, false, m, n, k, 0, 1))
        }
        for (o, l, ckk) in fwd.prefix(4) { shapes.append(("gw", false, true, o, ckk, l, 1, 2)) }
        for (o, l, ckk) in fwd.prefix(4) { shapes.append(("gx", true, false, ckk, l, o, 0, 2)) }

        let savedThreads = Threading.threads
        defer { Threading.threads = savedThreads }
        print("GEMM: GFLOP/s, best of \(rounds) rounds per library (OpenBLAS vs the engine's kernels)")
        print("shape                         threads  openblas   engine   speedup")
        var rng = SeededRNG(seed: 7)
        for (label, tA, tB, m, n, k, beta, threads) in shapes {
            Threading.threads = threads
            let lda = tA ? m : k, ldb = tB ? k : n, ldc = n
            let a = (0..<(m * k)).map { _ in rng.uniform(-1, 1) }
            let b = (0..<(k * n)).map { _ in rng.uniform(-1, 1) }
            var c = (0..<(m * n)).map { _ in rng.uniform(-1, 1) }
            let flops = 2.0 * Double(m) * Double(n) * Double(k)
            let iters = max(1, Int(6e8 / flops))
            var best = [0.0, 0.0]
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        let A = pa.baseAddress!, B = pb.baseAddress!, C = pc.baseAddress!
                        func run(_ backend: Int) {
                            if backend == 0 {
                                openBLASSgemm(
                                    transA: tA, transB: tB, m: m, n: n, k: k, a: A, lda: lda, b: B,
                                    ldb: ldb, beta: beta, c: C, ldc: ldc)
                            } else {
                                fastSgemm(
                                    transA: tA, transB: tB, m: m, n: n, k: k, a: A, lda: lda, b: B,
                                    ldb: ldb, beta: beta, c: C, ldc: ldc, threads: threads)
                            }
                        }
                        for backend in 0..<2 {
                            quiesce()
                            run(backend)  // warm up (thread pools, buffers)
                            for _ in 0..<rounds {
                                let t0 = DispatchTime.now().uptimeNanoseconds
                                for _ in 0..<iters { run(backend) }
                                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
                                best[backend] = max(best[backend], flops * Double(iters) / dt / 1e9)
                            }
                        }
                    }
                }
            }
            let name = "\(label) \(tA ? "T" : "N")\(tB ? "T" : "N") \(m)x\(n)x\(k)"
            print(
                name.padding(toLength: 30, withPad: " ", startingAt: 0)
                    + String(format: "%7d %9.1f %8.1f %8.2fx", threads, best[0], best[1], best[1] / best[0]))
        }
    }

    /// Waits until the idle worker threads of OpenBLAS and of the engine's GEMM stop spinning (both spin with
    /// sched_yield for a while after each call before they sleep). Measuring one library right after the
    /// other, on a machine with as many cores as threads, times it against the other's spinning workers:
    /// on the 2-core Zen 3 that halved either side's 2-thread GFLOP/s, so the two are measured in turn, not
    /// interleaved.
    func quiesce() { usleep(300_000) }

    /// Checks that the kernel's spinning workers and the engine's parallel loops do not get in each other's way.
    func mixed() {
        let savedThreads = Threading.threads
        defer { Threading.threads = savedThreads }
        Threading.threads = 2
        print("Conv pattern (parallel im2col-like copy + GEMM, 2 threads): ms per layer, best of 7")
        var rng = SeededRNG(seed: 8)
        for (m, n, k, images) in [
            (64, 3136, 576, 4), (128, 784, 1152, 4), (256, 196, 2304, 8), (512, 49, 4608, 8),
            (16, 1024, 144, 32)
        ] {
            let w = (0..<(m * k)).map { _ in rng.uniform(-1, 1) }
            let src = (0..<(k * n)).map { _ in rng.uniform(-1, 1) }
            var cols = [Float](repeating: 0, count: k * n)
            var y = [Float](repeating: 0, count: m * n)
            var best = [Double.infinity, .infinity]
            for backend in 0..<2 {
                quiesce()
                for _ in 0..<7 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    src.withUnsafeBufferPointer { ps in
                        cols.withUnsafeMutableBufferPointer { pc in
                            y.withUnsafeMutableBufferPointer { py in
                                for _ in 0..<images {
                                    let s = ps.baseAddress!, c = pc.baseAddress!
                                    Threading.parallelFor(k, minPerThread: 16) { row in
                                        (c + row * n).update(from: s + row * n, count: n)
                                    }
                                    if backend == 0 {
                                        openBLASSgemm(
                                            m: m, n: n, k: k, a: w, lda: k, b: c, ldb: n, c: py.baseAddress!, ldc: n)
                                    } else {
                                        fastSgemm(
                                            m: m, n: n, k: k, a: w, lda: k, b: c, ldb: n, c: py.baseAddress!, ldc: n)
                                    }
                                }
                            }
                        }
                    }
                    best[backend] = min(best[backend], Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-6)
                }
            }
            print(
                String(
                    format: "  M %4d N %5d K %5d x %2d images: openblas %7.3f ms  engine %7.3f ms  speedup %.2fx",
                    m, n, k, images, best[0], best[1], best[0] / best[1]))
        }
    }
}

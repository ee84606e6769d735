import Foundation
import CBLAS

/// The one threading policy of the engine: a single thread count shared by OpenBLAS (inside a GEMM)
/// and by the engine's own parallel loops (im2col, pooling, batch norm, elementwise). The two never run
/// at the same time: a kernel either calls sgemm or runs a parallel loop, and a parallel loop never calls
/// a multi-threaded GEMM (loops that need a GEMM per item use `Threading.withSingleThreadedBLAS`).
public enum Threading {
    nonisolated(unsafe) private static var _threads: Int = {
        let n = ProcessInfo.processInfo.activeProcessorCount
        openblas_set_num_threads(Int32(n))
        return n
    }()

    /// Number of threads used by the engine (default: number of cores).
    /// The most engine threads a command accepts: 4 per core (at least 8). More only adds per-thread
    /// workspaces and scheduling, never speed.
    public static let maxThreads = max(8, 4 * ProcessInfo.processInfo.activeProcessorCount)

    public static var threads: Int {
        get { _threads }
        set {
            let n = min(max(1, newValue), maxThreads)
            _threads = n
            openblas_set_num_threads(Int32(n))
        }
    }

    /// Runs `body(i)` for i in 0..<n, split into contiguous chunks over the configured threads.
    /// `minPerThread` keeps tiny loops on one thread where spawning would cost more than the work.
    @inline(__always)
    public static func parallelFor(_ n: Int, minPerThread: Int = 1, _ body: (Int) -> Void) {
        let t = min(threads, n / max(1, minPerThread))
        if t <= 1 {
            for i in 0..<n { body(i) }
            return
        }
        let chunk = (n + t - 1) / t
        DispatchQueue.concurrentPerform(iterations: t) { k in
            let lo = k * chunk, hi = min(n, lo + chunk)
            if lo < hi { for i in lo..<hi { body(i) } }
        }
    }

    /// `parallelFor` when `parallel`, else a plain loop (for kernels called from inside a parallel region).
    @inline(__always)
    public static func loop(_ n: Int, parallel: Bool, minPerThread: Int = 1, _ body: (Int) -> Void) {
        if parallel { parallelFor(n, minPerThread: minPerThread, body) } else { for i in 0..<n { body(i) } }
    }

    /// Runs `body(range)` on contiguous chunks of 0..<n.
    @inline(__always)
    public static func parallelChunks(_ n: Int, minPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let t = min(threads, n / max(1, minPerThread))
        if t <= 1 { if n > 0 { body(0..<n) }; return }
        let chunk = (n + t - 1) / t
        DispatchQueue.concurrentPerform(iterations: t) { k in
            let lo = k * chunk, hi = min(n, lo + chunk)
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Splits 0..<n into at most `threads` contiguous ranges and runs `body(worker, range)` for each in
    /// parallel; `worker` numbers the ranges 0, 1, ... so that each can use its own scratch memory.
    /// Returns the number of workers used.
    @discardableResult
    public static func parallelWorkers(_ n: Int, _ body: (Int, Range<Int>) -> Void) -> Int {
        let t = min(threads, n)
        if t <= 1 { if n > 0 { body(0, 0..<n) }; return 1 }
        let chunk = (n + t - 1) / t
        let used = (n + chunk - 1) / chunk
        DispatchQueue.concurrentPerform(iterations: used) { k in
            body(k, (k * chunk)..<min(n, (k + 1) * chunk))
        }
        return used
    }

    /// The number of ranges `parallelWorkers(n)` will use.
    public static func workerCount(_ n: Int) -> Int {
        let t = min(threads, n)
        if t <= 1 { return 1 }
        let chunk = (n + t - 1) / t
        return (n + chunk - 1) / chunk
    }

    /// Runs `body` with OpenBLAS limited to one thread (for GEMMs issued from inside a parallel loop).
    @discardableResult
    public static func withSingleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(_threads)) }
        return try body()
    }
}

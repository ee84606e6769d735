import Foundation
import CBLAS
import CKernels

/// Which implementation the engine's single-precision GEMM uses.
///
/// - `openBLAS`: the system OpenBLAS (`cblas_sgemm`).
/// - `engine`: the engine's own GEMM (`Sources/CKernels`, `ck_sgemm_mt`) at the active instruction set
///   (`InstructionSet.active`): AVX-512 micro-kernels, which on the Zen 5 machine they were tuned on run
///   1.5-2x faster than OpenBLAS's Haswell kernels, or AVX2 + FMA ones (see `bench gemm` and
///   docs/PERFORMANCE.md for the measurements on an AVX2-only Zen 3).
///
/// The default is `engine`; at the baseline level products still go to OpenBLAS (the engine's baseline GEMM
/// is a portable loop, kept for correctness only). The environment variable `ENGINE_GEMM=openblas|engine`
/// overrides the default (`avx512` is accepted as the old name of `engine`). Tests and benchmarks may assign
/// `gemmBackend`; it is read on every GEMM, so set it before work starts, not while GEMMs run on other threads.
public enum GEMMBackend: String, Sendable, CaseIterable {
    case openBLAS = "openblas"
    case engine = "engine"

    /// The backend chosen at startup: `ENGINE_GEMM` if set to a known value, else `engine`.
    public static let defaultBackend: GEMMBackend = {
        guard let env = ProcessInfo.processInfo.environment["ENGINE_GEMM"]?.lowercased() else { return .engine }
        return env == "avx512" ? .engine : GEMMBackend(rawValue: env) ?? .engine
    }()

    /// The backend `sgemm` uses (through `useEngine`): `engine` runs the engine's kernels only while the active
    /// instruction set has them, and OpenBLAS otherwise.
    nonisolated(unsafe) public static var gemmBackend: GEMMBackend = defaultBackend

    /// Whether a product of this shape should go to `fastSgemm`: the engine backend is selected and the
    /// active level has vector kernels. At both levels the engine's kernels measured at or above OpenBLAS on
    /// the conv shapes (docs/PERFORMANCE.md), tiny ones included, so there is no shape exception.
    @inline(__always)
    public static func useEngine(m: Int, n: Int, k: Int) -> Bool {
        gemmBackend == .engine && ck_isa() >= 1  // CK_ISA_AVX2 or above
    }
}

/// The thread count the engine's GEMMs should use right now: OpenBLAS's, which follows `Threading.threads` and
/// drops to 1 inside `Threading.withSingleThreadedBLAS` (GEMMs issued from inside parallel loops).
@inline(__always)
public func currentGEMMThreads() -> Int {
    Int(openblas_get_num_threads())
}

/// Row-major single-precision GEMM with the engine's kernels (at the active instruction set):
/// C = alpha * op(A) * op(B) + beta * C, with the exact semantics of `cblas_sgemm(CblasRowMajor, ...)` (and
/// of `sgemm`). A is (M, K), or (K, M) when `transA`; B is (K, N), or (N, K) when `transB`; C is (M, N).
/// `beta == 0` never reads C. `threads` (default: the
/// current BLAS thread count) splits the product over a pool owned by the kernel library; 1 runs on the
/// calling thread, which is safe from inside other parallel loops. At the baseline level this still gives
/// correct results through a slow portable loop; use `GEMMBackend.useEngine` to choose.
@inline(__always)
public func fastSgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
    threads: Int = currentGEMMThreads()
) {
    if m == 0 || n == 0 { return }
    ck_sgemm_mt(
        transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda),
        b, Int32(ldb), beta, c, Int32(ldc), Int32(max(1, threads)))
}

/// The same product through OpenBLAS regardless of the selected backend (reference for tests and benchmarks).
/// Uses OpenBLAS's current thread count.
public func openBLASSgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 {
            for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
        } else if beta != 1 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
        }
        return
    }
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

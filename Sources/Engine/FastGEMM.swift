import Foundation
import CBLAS
import CKernels

/// Which implementation the engine's single-precision GEMM uses.
///
/// - `openBLAS`: the system OpenBLAS (`cblas_sgemm`).
/// - `avx512`: the engine's own AVX-512 GEMM (`Sources/CKernels`, `ck_sgemm_mt`), which on the Zen 5 machine
///   this was tuned on runs 1.5-2x faster than OpenBLAS with its Haswell (AVX2) kernels, on every conv shape
///   measured (see `bench gemm`).
///
/// The default is `avx512` when the CPU supports AVX-512 (F, BW, DQ, VL), else `openBLAS`. The environment
/// variable `ENGINE_GEMM=openblas|avx512` overrides the default (an `avx512` request on a CPU without AVX-512
/// falls back to OpenBLAS). Tests and benchmarks may assign `gemmBackend`; it is read on every GEMM, so set it
/// before work starts, not while GEMMs run on other threads.
public enum GEMMBackend: String, Sendable, CaseIterable {
    case openBLAS = "openblas"
    case avx512 = "avx512"

    /// Whether this CPU can run the AVX-512 kernels.
    public static let hasAVX512: Bool = ck_has_avx512() != 0

    /// The backend chosen at startup: `ENGINE_GEMM` if set to a usable value, else `avx512` when available.
    public static let defaultBackend: GEMMBackend = {
        if let env = ProcessInfo.processInfo.environment["ENGINE_GEMM"]?.lowercased(),
            let b = GEMMBackend(rawValue: env)
        {
            return b == .avx512 && !hasAVX512 ? .openBLAS : b
        }
        return hasAVX512 ? .avx512 : .openBLAS
    }()

    nonisolated(unsafe) private static var _backend: GEMMBackend = defaultBackend

    /// The backend used by `sgemm` once it is routed through `GEMMBackend.useAVX512`. Setting `.avx512` on a
    /// CPU without AVX-512 keeps OpenBLAS.
    public static var gemmBackend: GEMMBackend {
        get { _backend }
        set { _backend = newValue == .avx512 && !hasAVX512 ? .openBLAS : newValue }
    }

    /// Whether a product of this shape should go to `fastSgemm` (the AVX-512 backend is selected). The AVX-512
    /// kernels were measured faster than OpenBLAS on all shapes tried, tiny ones included, so there is no
    /// shape exception.
    @inline(__always)
    public static func useAVX512(m: Int, n: Int, k: Int) -> Bool {
        _backend == .avx512
    }
}

/// The thread count the engine's GEMMs should use right now: OpenBLAS's, which follows `Threading.threads` and
/// drops to 1 inside `Threading.withSingleThreadedBLAS` (GEMMs issued from inside parallel loops).
@inline(__always)
public func currentGEMMThreads() -> Int {
    Int(openblas_get_num_threads())
}

/// Row-major single-precision GEMM with the AVX-512 kernels: C = alpha * op(A) * op(B) + beta * C, with the
/// exact semantics of `cblas_sgemm(CblasRowMajor, ...)` (and of `sgemm`). A is (M, K), or (K, M) when `transA`;
/// B is (K, N), or (N, K) when `transB`; C is (M, N). `beta == 0` never reads C. `threads` (default: the
/// current BLAS thread count) splits the product over a pool owned by the kernel library; 1 runs on the
/// calling thread, which is safe from inside other parallel loops. On a CPU without AVX-512 this still gives
/// correct results through a slow portable loop; use `GEMMBackend.useAVX512` to choose.
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

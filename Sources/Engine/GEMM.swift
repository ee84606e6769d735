import CBLAS

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C.
/// Runs the engine's kernels (Sources/CKernels: AVX-512 or AVX2 + FMA, per `InstructionSet.active`), else
/// OpenBLAS (`ENGINE_GEMM=openblas|engine` overrides; see FastGEMM.swift).
/// A: (M, K) or (K, M) when transA; B: (K, N) or (N, K) when transB; C: (M, N).
@inline(__always)
public func sgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 0 || n == 0 { return }
    if GEMMBackend.useEngine(m: m, n: n, k: k) {
        fastSgemm(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
            beta: beta, c: c, ldc: ldc)
        return
    }
    openBLASSgemm(
        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
        beta: beta, c: c, ldc: ldc)
}

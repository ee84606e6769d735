#ifndef CKERNELS_H
#define CKERNELS_H

// Single-precision GEMM with AVX-512 and AVX2 + FMA micro-kernels (Goto/BLIS blocking), row-major.
//
// ck_sgemm computes C = alpha * op(A) * op(B) + beta * C exactly like
// cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? ..., M, N, K, alpha, A, lda, B, ldb,
// beta, C, ldc): op(A) is M x K (A is stored K x M when transA), op(B) is K x N (B is stored N x K when transB),
// C is M x N. beta == 0 never reads C (C may hold NaN). K == 0 or alpha == 0 only scales C by beta.
//
// ck_sgemm_mt splits the product over up to `threads` threads (a small persistent pool owned by this library;
// the caller's thread does a share of the work). threads <= 1 runs on the calling thread only, which is safe
// from inside other parallel loops. Calls are thread-safe: packing buffers are per thread; a call that finds
// the pool busy (a concurrent or nested multi-threaded call) runs on its own thread.
//
// The kernel follows ck_isa(): AVX-512 micro-kernels (8 x 48 tiles), AVX2 + FMA ones (6 x 16 tiles), or a
// portable loop at the baseline level (correct everywhere, slow).

#ifdef __cplusplus
extern "C" {
#endif

// Instruction-set dispatch (cpu.c): every kernel picks its variant from ck_isa().
enum { CK_ISA_BASELINE = 0, CK_ISA_AVX2 = 1, CK_ISA_AVX512 = 2 };

/// The best level this CPU supports: CK_ISA_AVX512 (F, VL, BW, DQ), CK_ISA_AVX2 (AVX2 + FMA) or
/// CK_ISA_BASELINE (any other CPU; the only level on non-x86 machines).
int ck_cpu_isa(void);

/// The level the kernels use: ck_cpu_isa() capped by ENGINE_ISA=avx512|avx2|baseline (read at the first call)
/// or by the last ck_set_isa.
int ck_isa(void);

/// Caps the level (CK_ISA_*; clamped to the valid range) and returns the level now used. Not meant to be
/// called while kernels run on other threads.
int ck_set_isa(int level);

/// "avx512", "avx2" or "baseline"; ck_isa_from_name is the inverse (-1 for any other string or NULL).
const char *ck_isa_name(int level);
int ck_isa_from_name(const char *name);

/// 1 when the CPU (and OS) support AVX-512 (F, VL, BW, DQ), else 0 (regardless of any cap).
int ck_has_avx512(void);

void ck_sgemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

void ck_sgemm_mt(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, int threads);

/// d[k] += s[k] for k < n (AVX-512 when the CPU has it). d and s must not overlap.
void ck_add_inplace(float *d, const float *s, long n);

/// im2col of a stride-1 convolution for rows r0 ..< r1 of the column matrix (row r = (c * KH + i) * KW + j).
/// x: nb images of (C, H, W), image b at x + b * xs. Writes, for each image bb and output row oy in
/// oy0 ..< oy0 + rows, the OW columns cols[r * L + (bb * rows + oy - oy0) * OW + ox] =
/// x[bb][c][oy - PH + i * DH][ox - PW + j * DW] (0 where that falls on padding).
void ck_im2col_s1(const float *x, long xs, int C, int H, int W, int KH, int KW, int PH, int PW, int DH, int DW,
                  int OW, int oy0, int rows, int nb, int r0, int r1, float *cols, long L);

/// col2im's row at horizontal stride sw: d[ox * sw] += s[ox] for lo <= ox < hi (nothing else is touched).
void ck_add_row_strided(float *d, const float *s, int sw, int lo, int hi);

/// The same for any stride (SH, SW): input row oy * SH - PH + i * DH, column ox * SW - PW + j * DW.
void ck_im2col(const float *x, long xs, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int DH,
               int DW, int OW, int oy0, int rows, int nb, int r0, int r1, float *cols, long L);

#ifdef __cplusplus
}
#endif

#endif

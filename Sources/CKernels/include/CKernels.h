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

/// Runs `iters` steps of 12 independent vector multiply-add chains at the active level (FMA at the AVX2 and
/// AVX-512 levels) on the calling thread and returns the floating-point operations done: divided by the
/// time, one core's arithmetic ceiling. The result of the arithmetic goes to *sink.
double ck_peak_flops_loop(long iters, float *sink);

void ck_sgemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

void ck_sgemm_mt(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, int threads);

// Memory-bound loops (vec.c), each with AVX-512, AVX2 and baseline variants giving bit-identical results.

/// d[k] += s[k] for k < n. d and s must not partly overlap (d == s is fine).
void ck_add_inplace(float *d, const float *s, long n);

/// Sum of p[0 ..< n]; sum of (p[k] - mu)^2.
float ck_sum(const float *p, long n);
float ck_sum_sqdev(const float *p, long n, float mu);

/// out[0] = sum of g'[k], out[1] = sum of g'[k] * (p[k] - mu), with g'[k] = g[k] where y is NULL or y[k] > 0,
/// else 0 (the gradient through a ReLU whose output is y).
void ck_sum_dot(const float *g, const float *y, const float *p, long n, float mu, float *out);

/// y[k] = x[k] * a + b (then max(., 0) when relu; NaN gives 0). y may be x.
void ck_affine(const float *x, float *y, long n, float a, float b, int relu);

/// The batch-norm input gradient of one plane: q[j] = k * (g'[j] - mg - (p[j] - mu) * s), g' as in ck_sum_dot.
void ck_bn_grad(const float *g, const float *y, const float *p, float *q, long n, float k, float mg, float mu,
                float s);

/// q[j] = g[j] * a where y[j] > 0, else 0.
void ck_scale_where_positive(const float *g, const float *y, float *q, long n, float a);

/// y[k] = op(a[k], b[k]): a + b, a - b, a * b, max(a + b, 0), or a where b > 0 else 0 (the ReLU gradient
/// given its output b). y may be a or b.
enum { CK_OP_ADD = 0, CK_OP_SUB = 1, CK_OP_MUL = 2, CK_OP_ADD_RELU = 3, CK_OP_PASS_WHERE_POSITIVE = 4 };
void ck_map2(int op, const float *a, const float *b, float *y, long n);

/// m[k] = max(m[k], r[k]), NaN winning (max pooling's pass over a window's rows).
void ck_max_rows(float *m, const float *r, long n);

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

// Inference convolution in the channels-last layout (conv_nhwc.c): weights packed once, implicit GEMM, bias +
// residual + ReLU fused into the output pass. A 6 x 32 kernel at the AVX-512 level, 6 x 16 AVX2 + FMA ones at
// the AVX2 level, portable loops at the baseline level (the same packing and blocking).

/// Floats needed by ck_conv_pack for weights of shape (O, C, KH, KW).
long ck_conv_packed_size(int O, int C, int KH, int KW);

/// Packs w (O, C, KH, KW), each output channel o multiplied by scale[o] (scale may be NULL), into the layout
/// ck_conv_nhwc reads: k = (ky * KW + kx) * C + c in blocks of 256, each block as 16-column panels (columns
/// past O are zeros). dst holds ck_conv_packed_size floats.
void ck_conv_pack(const float *w, const float *scale, int O, int C, int KH, int KW, float *dst);

/// y (N, OH, OW, O) = act(conv(x (N, H, W, C), packed weights) + bias[o] + residual (N, OH, OW, O)), stride
/// (SH, SW), zero padding (PH, PW), no dilation; OH = (H + 2 PH - KH) / SH + 1 and likewise OW. bias and
/// residual may be NULL; act is max(., 0) when relu (NaN gives 0). y must not overlap x or residual.
/// `threads` as for ck_sgemm_mt (the same pool; 1 runs on the calling thread).
void ck_conv_nhwc(const float *x, int N, int H, int W, int C, const float *wp, int O, int KH, int KW, int SH,
                  int SW, int PH, int PW, const float *bias, const float *residual, int relu, float *y,
                  int threads);

/// Which micro-kernel ck_conv_nhwc runs, for tests and measurements: -1 (the default) the 6 x 32 one at the
/// AVX-512 level, 0 never it, 1 also at the AVX2 level (the same body compiled for AVX2: identical bits to the
/// 6 x 16 kernel, slower). Below AVX2 the portable loops run whatever the mode. Returns the previous mode. The
/// starting mode comes from ENGINE_CONV_WIDE (off / on; unset or anything else: -1).
int ck_conv_wide(int mode);

// 3x3 convolutions with stride 1 and padding 1 by Winograd's F(4x4, 3x3) (winograd.c), channels-last: 4x fewer
// multiply-adds than the direct product, on the same micro-kernel. Transforms at every level (vector loops).

/// Floats needed by ck_wino_pack for 3x3 weights of shape (O, C, 3, 3).
long ck_wino_packed_size(int O, int C);

/// Transforms w (O, C, 3, 3), each output channel o multiplied by scale[o] (scale may be NULL), into the 36
/// matrices G w G^T of the 6x6 Winograd domain, each packed as ck_conv_pack packs a 1x1 convolution's weights.
void ck_wino_pack(const float *w, const float *scale, int O, int C, float *dst);

/// Number of 4x4 output tiles of N images of H x W (the work unit of ck_wino_nhwc).
long ck_wino_tiles(int N, int H, int W);

/// y (N, H, W, O) = act(conv3x3(x (N, H, W, C), stride 1, padding 1) + bias[o] + residual (N, H, W, O)) with
/// weights from ck_wino_pack; bias and residual may be NULL, act as for ck_conv_nhwc. Returns 0 when its
/// workspace (36 x tiles per chunk x (C + O) floats per thread) could not be allocated (y is then incomplete).
int ck_wino_nhwc(const float *x, int N, int H, int W, int C, const float *up, int O, const float *bias,
                 const float *residual, int relu, float *y, int threads);

/// y (N, O, H, W) = conv3x3(x (N, C, H, W), stride 1, padding 1) with weights from ck_wino_pack, no epilogue: the
/// same products as ck_wino_nhwc (identical results), each row of tiles read and written through a channels-last
/// patch instead of channels-last copies of x and y. Returns 0 when its workspace could not be allocated.
int ck_wino_nchw(const float *x, int N, int H, int W, int C, const float *up, int O, float *y, int threads);

/// gw (O, C, 3, 3) += the weight gradient of y = conv3x3(x, w), stride 1, padding 1, for x (N, H, W, C) and the
/// output gradient dy (N, H, W, O), by Winograd (36 products over the tiles). Returns 0 when its workspace
/// (36 (C O + tiles per chunk (C + O)) floats, kept by the calling thread) could not be allocated.
int ck_wino_weight_grad(const float *x, const float *dy, int N, int H, int W, int C, int O, float *gw, int threads);

/// ck_wino_weight_grad for x (N, C, H, W) and dy (N, O, H, W), read through channels-last patches per row of tiles.
int ck_wino_weight_grad_nchw(const float *x, const float *dy, int N, int H, int W, int C, int O, float *gw,
                             int threads);

/// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols (a tile of a matrix transpose).
void ck_transpose(const float *src, long lds, int rows, int cols, float *dst, long ldd);

/// Makes glibc map (and unmap on free) every block of `bytes` or more, instead of raising that threshold as
/// mapped blocks are freed (freed blocks below it stay resident in its heap). Returns 1 on success, 0 where
/// the C library is not glibc or refused.
int ck_map_large_blocks(long bytes);

/// A block of `bytes` (a multiple of the page size) mapped from the system (Linux: anonymous mmap, page aligned,
/// pages faulted in on first touch; elsewhere 64-byte aligned malloc memory). NULL when refused.
void *ck_block_map(long bytes);

/// Returns a block of ck_block_map (or ck_block_resize) of `bytes`.
void ck_block_unmap(void *p, long bytes);

/// Resizes a block of ck_block_map from `old_bytes` to `new_bytes` (both multiples of the page size), keeping its
/// resident pages up to the smaller size (Linux mremap: shrinking unmaps the tail in place, growing may move the
/// pages without copying and maps only the new tail). Returns the block (maybe moved) or NULL, where the block is
/// unchanged (refused, or not Linux: the caller unmaps it and maps a new one).
void *ck_block_resize(void *p, long old_bytes, long new_bytes);

#ifdef __cplusplus
}
#endif

#endif

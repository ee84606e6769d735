// AVX-512 single-precision GEMM (row-major), Goto/BLIS structure:
//
//   for jc (NC columns of C)            B block  (KC x NC) packed once per (jc, pc), lives in L3
//     for pc (KC of the K dimension)
//       for ic (MC rows of C)           A block  (MC x KC) packed once per (jc, pc, ic), lives in L2
//         for jr (NR = 48 columns)      B micro-panel (KC x 48), reused over the whole ir loop
//           for ir (MR = 8 rows)        micro-kernel: 8 x 48 tile of C in 24 zmm accumulators
//
// The micro-kernel broadcasts one element of A per row and multiplies it by three 16-float vectors of B
// (24 FMAs per k step, 3 vector loads, 8 broadcasts); on Zen 5 it runs at ~98% of the 2 x 512-bit FMA peak
// from L1/L2. Edges: rows (mr < 8) are separate instantiations; columns use 1..3 vectors with a lane mask on
// the last one (masked loads and stores, so C needs no padding); a last vector with only 1..4 live lanes
// (N = 49, 196, ...) goes to narrow kernels instead of wasting 12..15 of 16 lanes.
//
// Packing handles the transposes (8x8 register transposes for non-transposed A and transposed B). When the
// other operand is small (few reuses), the kernel reads A or B in place instead of packing them; with a single
// MC block of rows, B is packed one micro-panel at a time into a buffer that stays in L1/L2.
//
// Threads: C is cut into a grid of independent cells (1, 2 or 4 per thread, chosen by a cost model of
// compute with edge waste plus packing), which a small persistent pool of workers and the calling thread take
// from a shared counter. Each cell runs the serial algorithm with the thread's own packing buffers
// (thread-local, grown on demand and reused). No global mutable state besides the pool, which one caller
// owns at a time (others run single-threaded).

#define _GNU_SOURCE
#include "CKernels.h"
#include "ck_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MR = 8, NV = 3, NR = 48, KC = 384, MC = 192, NC = 3072, CK_MAX_THREADS = 64 };
enum { BPG = 4 };  // B panels packed together when packing just in time (single MC block)

// ---------------------------------------------------------------------------------------------------------
// The instruction set comes from ck_isa() (cpu.c).

// ---------------------------------------------------------------------------------------------------------
// Helpers shared by all paths

/// C[M x N] *= beta (beta == 0 writes zeros without reading C).
static void scale_c(int M, int N, float beta, float *C, long ldc) {
    if (beta == 1.0f) return;
    for (int i = 0; i < M; i++) {
        float *c = C + (long)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)N);
        else for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/// Portable reference used on CPUs without AVX-512 (and if buffers cannot be allocated).
static void gemm_portable(int tA, int tB, int M, int N, int K, float alpha, const float *A, long lda,
                          const float *B, long ldb, float beta, float *C, long ldc) {
    scale_c(M, N, beta, C, ldc);
    for (int i = 0; i < M; i++) {
        float *c = C + (long)i * ldc;
        for (int p = 0; p < K; p++) {
            float a = alpha * (tA ? A[(long)p * lda + i] : A[(long)i * lda + p]);
            if (tB) for (int j = 0; j < N; j++) c[j] += a * B[(long)j * ldb + p];
            else {
                const float *b = B + (long)p * ldb;
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Thread-local packing buffers (grown on demand, freed when the thread exits)

typedef struct { float *a, *b; size_t na, nb; } ck_bufs;

static pthread_key_t ck_buf_key;
static pthread_once_t ck_buf_once = PTHREAD_ONCE_INIT;

static void ck_free_bufs(void *p) {
    ck_bufs *b = (ck_bufs *)p;
    if (!b) return;
    free(b->a);
    free(b->b);
    free(b);
}

static void ck_make_key(void) { pthread_key_create(&ck_buf_key, ck_free_bufs); }

static float *grow(float **p, size_t *have, size_t need) {
    if (*have >= need) return *p;
    free(*p);
    size_t bytes = (need * sizeof(float) + 4095) & ~(size_t)4095;
    *p = (float *)aligned_alloc(4096, bytes);
    *have = *p ? bytes / sizeof(float) : 0;
    return *p;
}

/// Returns this thread's buffers with at least na / nb floats (NULL on allocation failure).
__attribute__((unused))  // only the x86 paths pack
static ck_bufs *get_bufs(size_t na, size_t nb) {
    pthread_once(&ck_buf_once, ck_make_key);
    ck_bufs *b = (ck_bufs *)pthread_getspecific(ck_buf_key);
    if (!b) {
        b = (ck_bufs *)calloc(1, sizeof(ck_bufs));
        if (!b) return NULL;
        pthread_setspecific(ck_buf_key, b);
    }
    if (na && !grow(&b->a, &b->na, na)) return NULL;
    if (nb && !grow(&b->b, &b->nb, nb)) return NULL;
    return b;
}

// ---------------------------------------------------------------------------------------------------------
// The problem description shared by the threads

typedef struct {
    int tA, tB, M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    long lda, ldb, ldc;
} gemm_args;

#if CK_X86

// ---------------------------------------------------------------------------------------------------------
// Micro-kernel: C[mr x (16*nv, last vector masked by bm)] = alpha * A_panel * B_panel + beta * C.
//   A: packed (adirect == 0): A[k * MR + r];  in place (adirect == 1): A[r * a_rs + k].
//   B: row k of the panel at B + k * ldbk (packed: ldbk = NR; in place: ldbk = ldb).

CK_INLINE CK_AVX512 void ukr_body(const int mr, const int nv, const int adirect, long kc,
                                  const float *restrict A, long a_rs, const float *restrict B, long ldbk,
                                  __mmask16 bm, float *restrict C, long ldc, float alpha, float beta,
                                  const float *cn) {
    __m512 c[MR][NV];
    const float *ap[MR];
    for (int r = 0; r < mr; r++) {
        ap[r] = A + (adirect ? r * a_rs : r);
        for (int v = 0; v < nv; v++) c[r][v] = _mm512_setzero_ps();
        for (int v = 0; v < nv; v++) _mm_prefetch((const char *)(C + r * ldc + 16 * v), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + r * ldc + 16 * nv - 1), _MM_HINT_T0);
    }
    // The next tile of C (usually the next 8 rows), so that its lines arrive well before its own kernel call.
    for (int r = 0; r < MR; r++) {
        for (int v = 0; v < NV; v++) _mm_prefetch((const char *)(cn + r * ldc + 16 * v), _MM_HINT_T0);
        _mm_prefetch((const char *)(cn + r * ldc + NR - 1), _MM_HINT_T0);
    }
    const long astep = adirect ? 1 : MR;
    CK_UNROLL4
    for (long k = 0; k < kc; k++) {
        __m512 b[NV];
        for (int v = 0; v < nv - 1; v++) b[v] = _mm512_loadu_ps(B + 16 * v);
        b[nv - 1] = _mm512_maskz_loadu_ps(bm, B + 16 * (nv - 1));
        B += ldbk;
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_set1_ps(*ap[r]);
            ap[r] += astep;
            for (int v = 0; v < nv; v++) c[r][v] = _mm512_fmadd_ps(a, b[v], c[r][v]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
    if (beta == 0.0f) {
        for (int r = 0; r < mr; r++) {
            float *p = C + r * ldc;
            for (int v = 0; v < nv - 1; v++) _mm512_storeu_ps(p + 16 * v, _mm512_mul_ps(va, c[r][v]));
            _mm512_mask_storeu_ps(p + 16 * (nv - 1), bm, _mm512_mul_ps(va, c[r][nv - 1]));
        }
    } else if (beta == 1.0f) {
        for (int r = 0; r < mr; r++) {
            float *p = C + r * ldc;
            for (int v = 0; v < nv - 1; v++)
                _mm512_storeu_ps(p + 16 * v, _mm512_fmadd_ps(va, c[r][v], _mm512_loadu_ps(p + 16 * v)));
            float *q = p + 16 * (nv - 1);
            _mm512_mask_storeu_ps(q, bm, _mm512_fmadd_ps(va, c[r][nv - 1], _mm512_maskz_loadu_ps(bm, q)));
        }
    } else {
        const __m512 vb = _mm512_set1_ps(beta);
        for (int r = 0; r < mr; r++) {
            float *p = C + r * ldc;
            for (int v = 0; v < nv - 1; v++)
                _mm512_storeu_ps(p + 16 * v,
                                 _mm512_fmadd_ps(va, c[r][v], _mm512_mul_ps(vb, _mm512_loadu_ps(p + 16 * v))));
            float *q = p + 16 * (nv - 1);
            _mm512_mask_storeu_ps(q, bm, _mm512_fmadd_ps(va, c[r][nv - 1],
                                                         _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(bm, q))));
        }
    }
}

typedef void (*ukr_fn)(long kc, const float *A, long a_rs, const float *B, long ldbk, __mmask16 bm,
                       float *C, long ldc, float alpha, float beta, const float *cn);

#define CK_DEF_UKR(R, V, D)                                                                                  \
    static CK_AVX512 void ukr_##R##_##V##_##D(long kc, const float *A, long a_rs, const float *B, long ldbk, \
                                              __mmask16 bm, float *C, long ldc, float alpha, float beta,     \
                                              const float *cn) {                                            \
        ukr_body(R, V, D, kc, A, a_rs, B, ldbk, bm, C, ldc, alpha, beta, cn);                                 \
    }
#define CK_DEF_ROW(V, D)                                                                                     \
    CK_DEF_UKR(1, V, D) CK_DEF_UKR(2, V, D) CK_DEF_UKR(3, V, D) CK_DEF_UKR(4, V, D)                          \
    CK_DEF_UKR(5, V, D) CK_DEF_UKR(6, V, D) CK_DEF_UKR(7, V, D) CK_DEF_UKR(8, V, D)
CK_DEF_ROW(1, 0) CK_DEF_ROW(2, 0) CK_DEF_ROW(3, 0)
CK_DEF_ROW(1, 1) CK_DEF_ROW(2, 1) CK_DEF_ROW(3, 1)

#define CK_ROW(R, D) {ukr_##R##_1_##D, ukr_##R##_2_##D, ukr_##R##_3_##D}
#define CK_TAB(D) {CK_ROW(1, D), CK_ROW(2, D), CK_ROW(3, D), CK_ROW(4, D), CK_ROW(5, D), CK_ROW(6, D), \
                   CK_ROW(7, D), CK_ROW(8, D)}
static const ukr_fn ukr_table[2][MR][NV] = {CK_TAB(0), CK_TAB(1)};

// ---------------------------------------------------------------------------------------------------------
// Narrow kernels for the last 1..4 columns of C (N mod 16 <= 4, e.g. N = 49 or 196), where a 16-wide vector
// would be mostly padding. They write C[r * ldc + c] for r < mr, c < ncol with the same alpha / beta rules.

/// Packed A ([k][8]): vectors run down the 8 rows, B elements are broadcast; 4 partial sums per column
/// hide the FMA latency.
CK_INLINE CK_AVX512 void narrow_packed_body(const int ncol, long kc, const float *restrict A, int mr,
                                            const float *restrict B, long ldbk, float *restrict C, long ldc,
                                            float alpha, float beta) {
    __m256 acc[4][4];
    for (int c = 0; c < ncol; c++)
        for (int u = 0; u < 4; u++) acc[c][u] = _mm256_setzero_ps();
    long k = 0;
    for (; k + 4 <= kc; k += 4) {
        for (int u = 0; u < 4; u++) {
            const __m256 a = _mm256_load_ps(A + (k + u) * MR);
            for (int c = 0; c < ncol; c++)
                acc[c][u] = _mm256_fmadd_ps(a, _mm256_broadcast_ss(B + (k + u) * ldbk + c), acc[c][u]);
        }
    }
    for (; k < kc; k++) {
        const __m256 a = _mm256_load_ps(A + k * MR);
        for (int c = 0; c < ncol; c++) acc[c][0] = _mm256_fmadd_ps(a, _mm256_broadcast_ss(B + k * ldbk + c), acc[c][0]);
    }
    for (int c = 0; c < ncol; c++) {
        float t[8];
        _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(acc[c][0], acc[c][1]), _mm256_add_ps(acc[c][2], acc[c][3])));
        for (int r = 0; r < mr; r++) {
            float *p = C + r * ldc + c;
            *p = beta == 0.0f ? alpha * t[r] : alpha * t[r] + beta * *p;
        }
    }
}

/// A read in place (rows at a_rs, contiguous k): dot products along k against the tail columns of B, which
/// the caller copied into bt[c * KC + k]. Rows go in groups of 4 (16 accumulators at most).
CK_INLINE CK_AVX512 void narrow_dot_body(const int ncol, long kc, const float *restrict A, long a_rs, int mr,
                                         const float *restrict bt, float *restrict C, long ldc,
                                         float alpha, float beta) {
    const __mmask16 tail = (__mmask16)((1u << (kc & 15)) - 1);
    for (int r0 = 0; r0 < mr; r0 += 4) {
        const int rows = mr - r0 < 4 ? mr - r0 : 4;
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < ncol; c++) acc[r][c] = _mm512_setzero_ps();
        for (long k = 0; k < kc; k += 16) {
            const __mmask16 m = k + 16 <= kc ? (__mmask16)0xFFFF : tail;
            __m512 b[4];
            for (int c = 0; c < ncol; c++) b[c] = _mm512_maskz_loadu_ps(m, bt + c * KC + k);
            for (int r = 0; r < 4; r++) {
                if (r >= rows) break;
                const __m512 a = _mm512_maskz_loadu_ps(m, A + (r0 + r) * a_rs + k);
                for (int c = 0; c < ncol; c++) acc[r][c] = _mm512_fmadd_ps(a, b[c], acc[r][c]);
            }
        }
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < ncol; c++) {
                float *p = C + (r0 + r) * ldc + c;
                const float v = _mm512_reduce_add_ps(acc[r][c]);
                *p = beta == 0.0f ? alpha * v : alpha * v + beta * *p;
            }
    }
}

static CK_AVX512 void narrow_packed(int ncol, long kc, const float *A, int mr, const float *B, long ldbk,
                                    float *C, long ldc, float alpha, float beta) {
    switch (ncol) {
    case 1: narrow_packed_body(1, kc, A, mr, B, ldbk, C, ldc, alpha, beta); break;
    case 2: narrow_packed_body(2, kc, A, mr, B, ldbk, C, ldc, alpha, beta); break;
    case 3: narrow_packed_body(3, kc, A, mr, B, ldbk, C, ldc, alpha, beta); break;
    default: narrow_packed_body(4, kc, A, mr, B, ldbk, C, ldc, alpha, beta); break;
    }
}

static CK_AVX512 void narrow_dot(int ncol, long kc, const float *A, long a_rs, int mr, const float *bt,
                                 float *C, long ldc, float alpha, float beta) {
    switch (ncol) {
    case 1: narrow_dot_body(1, kc, A, a_rs, mr, bt, C, ldc, alpha, beta); break;
    case 2: narrow_dot_body(2, kc, A, a_rs, mr, bt, C, ldc, alpha, beta); break;
    case 3: narrow_dot_body(3, kc, A, a_rs, mr, bt, C, ldc, alpha, beta); break;
    default: narrow_dot_body(4, kc, A, a_rs, mr, bt, C, ldc, alpha, beta); break;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Packing


/// Transposes `rows` (<= 8) source rows src[r * ld + k], k < kc, into dst[k * dstride + r] for r < 8
/// (rows >= `rows` become zeros).
CK_INLINE CK_AVX512 void pack_transpose8(const float *src, long ld, int rows, long kc, float *dst, long dstride) {
    long k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++) r[i] = i < rows ? _mm256_loadu_ps(src + i * ld + k) : _mm256_setzero_ps();
        ck_tr8x8(r);
        for (int i = 0; i < 8; i++) _mm256_store_ps(dst + (k + i) * dstride, r[i]);
    }
    if (k < kc) {
        int rem = (int)(kc - k);
        __mmask8 km = (__mmask8)((1u << rem) - 1);
        __m256 r[8];
        for (int i = 0; i < 8; i++) r[i] = i < rows ? _mm256_maskz_loadu_ps(km, src + i * ld + k) : _mm256_setzero_ps();
        ck_tr8x8(r);
        for (int i = 0; i < rem; i++) _mm256_store_ps(dst + (k + i) * dstride, r[i]);
    }
}

/// Packs op(A)[i0 : i0 + mc, p0 : p0 + kc] into MR-row panels: dst[panel][k][r].
static CK_AVX512 void pack_a(const gemm_args *g, int i0, int mc, int p0, int kc, float *dst) {
    if (g->tA) {
        // A stored K x M: two panels at a time, so that each k reads one whole 64-byte line (16 floats).
        for (int ip = 0; ip < mc; ip += 2 * MR) {
            const int rows = mc - ip < 2 * MR ? mc - ip : 2 * MR;
            const float *s = g->A + (long)p0 * g->lda + i0 + ip;
            float *d0 = dst + (long)ip * kc, *d1 = d0 + (long)kc * MR;
            if (rows > MR) {
                const __mmask16 m = (__mmask16)((1u << rows) - 1);
                for (int k = 0; k < kc; k++) {
                    _mm_prefetch((const char *)(s + (long)(k + 16) * g->lda), _MM_HINT_T0);
                    _mm_prefetch((const char *)(s + (long)(k + 16) * g->lda + 16), _MM_HINT_T1);
                    const __m512 v = _mm512_maskz_loadu_ps(m, s + (long)k * g->lda);
                    _mm256_store_ps(d0 + k * MR, _mm512_castps512_ps256(v));
                    _mm256_store_ps(d1 + k * MR, _mm512_extractf32x8_ps(v, 1));
                }
            } else {
                const __mmask8 m = (__mmask8)((1u << rows) - 1);
                for (int k = 0; k < kc; k++)
                    _mm256_store_ps(d0 + k * MR, _mm256_maskz_loadu_ps(m, s + (long)k * g->lda));
            }
        }
        return;
    }
    for (int ip = 0; ip < mc; ip += MR) {   // A stored M x K: transpose 8 x 8 blocks
        const int rows = mc - ip < MR ? mc - ip : MR;
        pack_transpose8(g->A + (long)(i0 + ip) * g->lda + p0, g->lda, rows, kc, dst + (long)ip * kc, MR);
    }
}

/// Packs op(B)[p0 : p0 + kc, j0 : j0 + nc] into NR-column panels: dst[panel][k][j] (row stride NR).
static CK_AVX512 void pack_b(const gemm_args *g, int p0, int kc, int j0, int nc, float *dst) {
    if (!g->tB) {
        // B stored K x N: rows of B are far apart (ldb), so walk up to BG panels together: each row then
        // gives one contiguous run of up to BG * 48 floats (whole lines, within one page), and row k + 4
        // is prefetched.
        enum { BG = 4 };
        for (int jg = 0; jg < nc; jg += BG * NR) {
            const int gcols = nc - jg < BG * NR ? nc - jg : BG * NR;
            const int full = gcols / NR;                  // whole panels in the group
            const int rest = gcols - full * NR;           // columns of a last, partial panel
            const float *s = g->B + (long)p0 * g->ldb + j0 + jg;
            float *d = dst + (long)jg * kc;
            for (int k = 0; k < kc; k++) {
                const float *sk = s + (long)k * g->ldb;
                const char *pf = (const char *)(sk + 4 * g->ldb);
                for (int b = 0; b < gcols * 4; b += 64) _mm_prefetch(pf + b, _MM_HINT_T0);
                _mm_prefetch(pf + gcols * 4 - 1, _MM_HINT_T0);
                for (int q = 0; q < full; q++) {
                    const float *sq = sk + q * NR;
                    float *dq = d + (long)q * NR * kc + k * NR;
                    _mm512_store_ps(dq, _mm512_loadu_ps(sq));
                    _mm512_store_ps(dq + 16, _mm512_loadu_ps(sq + 16));
                    _mm512_store_ps(dq + 32, _mm512_loadu_ps(sq + 32));
                }
                if (rest) {
                    const float *sq = sk + full * NR;
                    float *dq = d + (long)full * NR * kc + k * NR;
                    for (int v = 0; v * 16 < rest; v++) {
                        const int left = rest - 16 * v;
                        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
                        _mm512_store_ps(dq + 16 * v, _mm512_maskz_loadu_ps(m, sq + 16 * v));
                    }
                }
            }
        }
        return;
    }
    for (int jp = 0; jp < nc; jp += NR) {   // B stored N x K: transpose groups of 8 columns
        const int cols = nc - jp < NR ? nc - jp : NR;
        float *d = dst + (long)jp * kc;
        for (int jj = 0; jj < cols; jj += 8) {
            const int rows = cols - jj < 8 ? cols - jj : 8;
            pack_transpose8(g->B + (long)(j0 + jp + jj) * g->ldb + p0, g->ldb, rows, kc, d + jj, NR);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Serial driver over the sub-product C[i0:i1, j0:j1]

/// Whether to read B in place (no packing): only non-transposed B, and only when few row panels reuse it.
/// Up to 8 panels (M <= 64) reading B from L2 beat packing it: convolutions with 32-64 output channels ran
/// 1.2-1.9x faster forward (CIFAR stages 2-3, ResNet-101 conv1 and layer1 3x3) than with the old limit of 16.
static int use_b_direct(const gemm_args *g, int m) { return !g->tB && m <= 8 * MR; }
/// Whether to read A in place: only non-transposed A, and only when few column panels reuse it.
static int use_a_direct(const gemm_args *g, int n) { return !g->tA && n <= 2 * NR; }

static CK_AVX512 int gemm_block(const gemm_args *g, int i0, int i1, int j0, int j1) {
    const int M = i1 - i0, N = j1 - j0, K = g->K;
    if (M <= 0 || N <= 0) return 1;
    const int bdirect = use_b_direct(g, M), adirect = use_a_direct(g, N);
    // With a single MC block of rows, each B panel is used by one pass of the ir loop: pack it just before
    // that pass into a small buffer that stays in L1/L2, instead of packing a whole KC x NC block (which
    // goes out to L3 and comes back).
    const int bpanel = !bdirect && M <= MC;
    const int kcmax = K < KC ? K : KC;
    const int mcmax = M < MC ? (M + MR - 1) / MR * MR : MC;
    const int ncmax = bpanel ? BPG * NR : N < NC ? (N + NR - 1) / NR * NR : NC;
    ck_bufs *bufs = get_bufs(adirect ? 0 : (size_t)mcmax * kcmax, bdirect ? 0 : (size_t)ncmax * kcmax);
    if (!bufs) return 0;
    float *Ap = bufs->a, *Bp = bufs->b;
    const long lda = g->lda, ldb = g->ldb, ldc = g->ldc;
    float bt[4 * KC] __attribute__((aligned(64)));  // tail columns of B, transposed, for narrow_dot

    for (int jc = j0; jc < j1; jc += NC) {
        const int nc = j1 - jc < NC ? j1 - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            const int kc = K - pc < KC ? K - pc : KC;
            const float beta = pc == 0 ? g->beta : 1.0f;
            if (!bdirect && !bpanel) pack_b(g, pc, kc, jc, nc, Bp);
            for (int ic = i0; ic < i1; ic += MC) {
                const int mc = i1 - ic < MC ? i1 - ic : MC;
                if (!adirect) pack_a(g, ic, mc, pc, kc, Ap);
                for (int jr = 0; jr < nc; jr += NR) {
                    const int nr = nc - jr < NR ? nc - jr : NR;
                    int nv = (nr + 15) / 16;
                    const int last = nr - 16 * (nv - 1);
                    // A last vector with <= 4 live lanes goes to the narrow kernels instead.
                    const int ntail = last <= 4 ? last : 0;
                    if (ntail) nv--;
                    const __mmask16 bm = ntail || last == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << last) - 1);
                    const float *bp;
                    long ldbk = NR;
                    if (bdirect) { bp = g->B + (long)pc * ldb + jc + jr; ldbk = ldb; }
                    else if (bpanel) {   // pack BPG panels at a time, just before their use
                        const int off = jr % (BPG * NR);
                        if (off == 0) pack_b(g, pc, kc, jc + jr, nc - jr < BPG * NR ? nc - jr : BPG * NR, Bp);
                        bp = Bp + (long)off * kc;
                    }
                    else bp = Bp + (long)jr * kc;
                    if (ntail && adirect)
                        for (int c = 0; c < ntail; c++)
                            for (int k = 0; k < kc; k++) bt[c * KC + k] = bp[k * ldbk + 16 * nv + c];
                    const ukr_fn *row = nv ? ukr_table[adirect][MR - 1] : NULL;
                    for (int ir = 0; ir < mc; ir += MR) {
                        const int mr = mc - ir < MR ? mc - ir : MR;
                        const float *ap = adirect ? g->A + (long)(ic + ir) * lda + pc : Ap + (long)ir * kc;
                        float *cp = g->C + (long)(ic + ir) * ldc + jc + jr;
                        if (nv) {
                            // Next tile: 8 rows down, or the top of the next column panel.
                            const float *cn = ir + MR < mc ? cp + MR * ldc : g->C + (long)ic * ldc + jc + jr + NR;
                            if (mr == MR) row[nv - 1](kc, ap, lda, bp, ldbk, bm, cp, ldc, g->alpha, beta, cn);
                            else
                                ukr_table[adirect][mr - 1][nv - 1](kc, ap, lda, bp, ldbk, bm, cp, ldc, g->alpha, beta,
                                                                   cn);
                        }
                        if (ntail) {
                            if (adirect) narrow_dot(ntail, kc, ap, lda, mr, bt, cp + 16 * nv, ldc, g->alpha, beta);
                            else
                                narrow_packed(ntail, kc, ap, mr, bp + 16 * nv, ldbk, cp + 16 * nv, ldc, g->alpha, beta);
                        }
                    }
                }
            }
        }
    }
    return 1;
}

// ---------------------------------------------------------------------------------------------------------
// AVX2 + FMA path (CPUs without AVX-512: AMD Zen 1-4 client parts, most Intel client chips). Same structure
// as the AVX-512 path with the classic Haswell tile: 6 rows x 16 columns of C in 12 ymm accumulators
// (2 vector loads of B and 6 broadcasts of A per k step, 12 FMAs). Edges: rows (mr < 6) are separate
// instantiations; a last vector of 1..7 columns is stored through a lane mask, and read through one when B is
// read in place (a packed B panel is zero-padded to 16 columns, so its loads need none).

enum { MR2 = 6, NR2 = 16, KC2 = 256, MC2 = 168, NC2 = 3072, BPG2 = 4 };


/// C[mr x (8 * nv, the last vector `last` lanes wide)] = alpha * A_panel * B_panel + beta * C.
///   A: packed (adirect == 0): A[k * MR2 + r];  in place (adirect == 1): A[r * a_rs + k].
///   B: row k of the panel at B + k * ldbk; bmask: read the last vector through the lane mask.
CK_INLINE CK_AVX2 void ukr2_body(const int mr, const int nv, const int adirect, const int bmask, long kc,
                                 const float *restrict A, long a_rs, const float *restrict B, long ldbk, int last,
                                 float *restrict C, long ldc, float alpha, float beta) {
    __m256 c[MR2][2];
    const float *ap[MR2];
    const __m256i lm = ck_lanes8(last);
    for (int r = 0; r < mr; r++) {
        ap[r] = A + (adirect ? r * a_rs : r);
        for (int v = 0; v < nv; v++) c[r][v] = _mm256_setzero_ps();
        _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + r * ldc + 8 * nv - 1), _MM_HINT_T0);
    }
    const long astep = adirect ? 1 : MR2;
    CK_UNROLL4
    for (long k = 0; k < kc; k++) {
        __m256 b[2];
        for (int v = 0; v < nv - 1; v++) b[v] = _mm256_loadu_ps(B + 8 * v);
        b[nv - 1] = bmask ? _mm256_maskload_ps(B + 8 * (nv - 1), lm) : _mm256_loadu_ps(B + 8 * (nv - 1));
        B += ldbk;
        for (int r = 0; r < mr; r++) {
            const __m256 a = _mm256_broadcast_ss(ap[r]);
            ap[r] += astep;
            for (int v = 0; v < nv; v++) c[r][v] = _mm256_fmadd_ps(a, b[v], c[r][v]);
        }
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int r = 0; r < mr; r++) {
        float *p = C + r * ldc;
        for (int v = 0; v < nv; v++) {
            float *q = p + 8 * v;
            const int masked = v == nv - 1 && last < 8;
            __m256 o = _mm256_mul_ps(va, c[r][v]);
            if (beta != 0.0f) {
                const __m256 old = masked ? _mm256_maskload_ps(q, lm) : _mm256_loadu_ps(q);
                o = beta == 1.0f ? _mm256_add_ps(o, old) : _mm256_fmadd_ps(vb, old, o);
            }
            if (masked) _mm256_maskstore_ps(q, lm, o);
            else _mm256_storeu_ps(q, o);
        }
    }
}

typedef void (*ukr2_fn)(long kc, const float *A, long a_rs, const float *B, long ldbk, int last, float *C,
                        long ldc, float alpha, float beta);

#define CK_DEF_UKR2(R, V, D, M)                                                                             \
    static CK_AVX2 void ukr2_##R##_##V##_##D##_##M(long kc, const float *A, long a_rs, const float *B,      \
                                                   long ldbk, int last, float *C, long ldc, float alpha,    \
                                                   float beta) {                                            \
        ukr2_body(R, V, D, M, kc, A, a_rs, B, ldbk, last, C, ldc, alpha, beta);                              \
    }
#define CK_DEF_ROW2(V, D, M)                                                                                 \
    CK_DEF_UKR2(1, V, D, M) CK_DEF_UKR2(2, V, D, M) CK_DEF_UKR2(3, V, D, M) CK_DEF_UKR2(4, V, D, M)          \
    CK_DEF_UKR2(5, V, D, M) CK_DEF_UKR2(6, V, D, M)
#define CK_DEF_DM2(D, M) CK_DEF_ROW2(1, D, M) CK_DEF_ROW2(2, D, M)
CK_DEF_DM2(0, 0) CK_DEF_DM2(0, 1) CK_DEF_DM2(1, 0) CK_DEF_DM2(1, 1)

#define CK_ROW2(R, D, M) {ukr2_##R##_1_##D##_##M, ukr2_##R##_2_##D##_##M}
#define CK_TAB2(D, M) {CK_ROW2(1, D, M), CK_ROW2(2, D, M), CK_ROW2(3, D, M), CK_ROW2(4, D, M), \
                       CK_ROW2(5, D, M), CK_ROW2(6, D, M)}
/// [adirect][bmask][mr - 1][nv - 1]
static const ukr2_fn ukr2_table[2][2][MR2][2] = {{CK_TAB2(0, 0), CK_TAB2(0, 1)}, {CK_TAB2(1, 0), CK_TAB2(1, 1)}};

/// Transposes `rows` (<= 8) source rows src[r * ld + k], k < kc, into dst[k * dstride + r]: 8 floats per k,
/// written in ascending k, so with dstride < 8 each store's spill is overwritten by the next (the caller's
/// buffer has 8 floats of slack after the last one). Rows >= `rows` become zeros.
CK_INLINE CK_AVX2 void pack_transpose8_avx2(const float *src, long ld, int rows, long kc, float *dst, long dstride) {
    long k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++) r[i] = i < rows ? _mm256_loadu_ps(src + i * ld + k) : _mm256_setzero_ps();
        ck_tr8x8(r);
        for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (k + i) * dstride, r[i]);
    }
    if (k < kc) {
        const int rem = (int)(kc - k);
        const __m256i km = ck_lanes8(rem);
        __m256 r[8];
        for (int i = 0; i < 8; i++) r[i] = i < rows ? _mm256_maskload_ps(src + i * ld + k, km) : _mm256_setzero_ps();
        ck_tr8x8(r);
        for (int i = 0; i < rem; i++) _mm256_storeu_ps(dst + (k + i) * dstride, r[i]);
    }
}

/// Packs op(A)[i0 : i0 + mc, p0 : p0 + kc] into MR2-row panels: dst[panel][k][r] (rows past mc are zeros).
static CK_AVX2 void pack_a2(const gemm_args *g, int i0, int mc, int p0, int kc, float *dst) {
    for (int ip = 0; ip < mc; ip += MR2) {
        const int rows = mc - ip < MR2 ? mc - ip : MR2;
        float *d = dst + (long)ip * kc;
        if (g->tA) {  // A stored K x M: each k gives MR2 contiguous floats
            const float *s = g->A + (long)p0 * g->lda + i0 + ip;
            if (rows == MR2) {
                for (int k = 0; k < kc; k++) {
                    const float *sk = s + (long)k * g->lda;
                    _mm_storeu_ps(d + k * MR2, _mm_loadu_ps(sk));
                    d[k * MR2 + 4] = sk[4];
                    d[k * MR2 + 5] = sk[5];
                }
            } else {
                for (int k = 0; k < kc; k++)
                    for (int r = 0; r < MR2; r++) d[k * MR2 + r] = r < rows ? s[(long)k * g->lda + r] : 0.0f;
            }
        } else {  // A stored M x K: transpose 8-column blocks of the panel's rows
            pack_transpose8_avx2(g->A + (long)(i0 + ip) * g->lda + p0, g->lda, rows, kc, d, MR2);
        }
    }
}

/// Packs op(B)[p0 : p0 + kc, j0 : j0 + nc] into NR2-column panels: dst[panel][k][j] (zero-padded columns).
static CK_AVX2 void pack_b2(const gemm_args *g, int p0, int kc, int j0, int nc, float *dst) {
    if (!g->tB) {
        // B stored K x N: rows of B are far apart (ldb), so walk every panel of the block along each row (one
        // contiguous run of nc floats per row, one page) rather than one panel down all the rows.
        const int full = nc / NR2, rest = nc - full * NR2;
        const __m256i m0 = ck_lanes8(rest < 8 ? (rest ? rest : 8) : 8);
        const __m256i m1 = rest > 8 ? ck_lanes8(rest - 8) : _mm256_setzero_si256();
        const float *s = g->B + (long)p0 * g->ldb + j0;
        for (int k = 0; k < kc; k++) {
            const float *sk = s + (long)k * g->ldb;
            const char *pf = (const char *)(sk + 4 * g->ldb), *pn = (const char *)(sk + nc);
            for (int b = 0; b < nc * 4; b += 64) _mm_prefetch(pf + b, _MM_HINT_T0);
            // The same row's next nc columns (the next group, when B is packed a few panels at a time): their
            // lines come from memory while this group is multiplied.
            for (int b = 0; b < nc * 4; b += 64) _mm_prefetch(pn + b, _MM_HINT_T1);
            float *dk = dst + k * NR2;
            for (int q = 0; q < full; q++) {
                _mm256_store_ps(dk + (long)q * NR2 * kc, _mm256_loadu_ps(sk + q * NR2));
                _mm256_store_ps(dk + (long)q * NR2 * kc + 8, _mm256_loadu_ps(sk + q * NR2 + 8));
            }
            if (rest) {
                float *d = dk + (long)full * NR2 * kc;
                _mm256_store_ps(d, _mm256_maskload_ps(sk + full * NR2, m0));
                _mm256_store_ps(d + 8, _mm256_maskload_ps(sk + full * NR2 + 8, m1));
            }
        }
        return;
    }
    for (int jp = 0; jp < nc; jp += NR2) {  // B stored N x K: transpose groups of 8 columns
        const int cols = nc - jp < NR2 ? nc - jp : NR2;
        float *d = dst + (long)jp * kc;
        for (int jj = 0; jj < NR2; jj += 8) {
            const int rows = cols - jj < 8 ? (cols - jj > 0 ? cols - jj : 0) : 8;
            pack_transpose8_avx2(g->B + (long)(j0 + jp + jj) * g->ldb + p0, g->ldb, rows, kc, d + jj, NR2);
        }
    }
}

/// Whether to read B in place: non-transposed B used by few row panels (one always; up to 32 rows when B's
/// rows are not a multiple of 256 bytes apart: such rows share a few L1 sets, and a 16-column panel of them
/// evicts itself, 2x slower at M = 16, N = K = 1024 x 144 on Zen 3; padded, reading in place beats packing
/// by 8-12% at M = 16 and 32). Whether to read A in place: non-transposed A used by few column panels.
static int use_b_direct2(const gemm_args *g, int m) {
    return !g->tB && (m <= MR2 || (m <= 32 && g->ldb % 64 != 0));
}
static int use_a_direct2(const gemm_args *g, int n) { return !g->tA && n <= 2 * NR2; }

static CK_AVX2 int gemm_block2(const gemm_args *g, int i0, int i1, int j0, int j1) {
    const int M = i1 - i0, N = j1 - j0, K = g->K;
    if (M <= 0 || N <= 0) return 1;
    const int bdirect = use_b_direct2(g, M), adirect = use_a_direct2(g, N);
    const int bpanel = !bdirect && M <= MC2;  // pack B a few panels at a time, just before their use
    const int kcmax = K < KC2 ? K : KC2;
    const int mcmax = M < MC2 ? (M + MR2 - 1) / MR2 * MR2 : MC2;
    const int ncmax = bpanel ? BPG2 * NR2 : N < NC2 ? (N + NR2 - 1) / NR2 * NR2 : NC2;
    ck_bufs *bufs = get_bufs(adirect ? 0 : (size_t)mcmax * kcmax + 8, bdirect ? 0 : (size_t)ncmax * kcmax + 8);
    if (!bufs) return 0;
    float *Ap = bufs->a, *Bp = bufs->b;
    const long lda = g->lda, ldb = g->ldb, ldc = g->ldc;

    for (int jc = j0; jc < j1; jc += NC2) {
        const int nc = j1 - jc < NC2 ? j1 - jc : NC2;
        for (int pc = 0; pc < K; pc += KC2) {
            const int kc = K - pc < KC2 ? K - pc : KC2;
            const float beta = pc == 0 ? g->beta : 1.0f;
            if (!bdirect && !bpanel) pack_b2(g, pc, kc, jc, nc, Bp);
            for (int ic = i0; ic < i1; ic += MC2) {
                const int mc = i1 - ic < MC2 ? i1 - ic : MC2;
                if (!adirect) pack_a2(g, ic, mc, pc, kc, Ap);
                for (int jr = 0; jr < nc; jr += NR2) {
                    const int nr = nc - jr < NR2 ? nc - jr : NR2;
                    const int nv = (nr + 7) / 8, last = nr - 8 * (nv - 1);
                    const float *bp;
                    long ldbk = NR2;
                    if (bdirect) { bp = g->B + (long)pc * ldb + jc + jr; ldbk = ldb; }
                    else if (bpanel) {
                        const int off = jr % (BPG2 * NR2);
                        if (off == 0) pack_b2(g, pc, kc, jc + jr, nc - jr < BPG2 * NR2 ? nc - jr : BPG2 * NR2, Bp);
                        bp = Bp + (long)off * kc;
                    }
                    else bp = Bp + (long)jr * kc;
                    const int bmask = bdirect && last < 8;
                    for (int ir = 0; ir < mc; ir += MR2) {
                        const int mr = mc - ir < MR2 ? mc - ir : MR2;
                        const float *ap = adirect ? g->A + (long)(ic + ir) * lda + pc : Ap + (long)ir * kc;
                        float *cp = g->C + (long)(ic + ir) * ldc + jc + jr;
                        ukr2_table[adirect][bmask][mr - 1][nv - 1](kc, ap, lda, bp, ldbk, last, cp, ldc, g->alpha,
                                                                  beta);
                    }
                }
            }
        }
    }
    return 1;
}

#endif  // CK_X86

/// Computes the sub-product C[i0:i1, j0:j1] on the calling thread.
static void run_block(const gemm_args *g, int i0, int i1, int j0, int j1) {
    if (i1 <= i0 || j1 <= j0) return;
#if CK_X86
    const int isa = ck_isa();
    if (isa == CK_ISA_AVX512 && gemm_block(g, i0, i1, j0, j1)) return;
    if (isa == CK_ISA_AVX2 && gemm_block2(g, i0, i1, j0, j1)) return;
#endif
    const float *A = g->tA ? g->A + i0 : g->A + (long)i0 * g->lda;
    const float *B = g->tB ? g->B + (long)j0 * g->ldb : g->B + j0;
    gemm_portable(g->tA, g->tB, i1 - i0, j1 - j0, g->K, g->alpha, A, g->lda, B, g->ldb, g->beta,
                  g->C + (long)i0 * g->ldc + j0, g->ldc);
}

// ---------------------------------------------------------------------------------------------------------
// Thread pool: persistent workers, each with its own job slot. Workers spin briefly after a job (GEMMs
// tend to come in bursts), then sleep on a condition variable. One caller at a time owns the pool
// (pool_owner); a caller that finds it taken runs single-threaded instead of waiting.


typedef struct {
    _Atomic unsigned gen;  // bumped by the owner to hand this worker a job
    ck_task_fn fn;
    void *arg;
    char pad[64 - sizeof(unsigned) - sizeof(void *) * 2];
} __attribute__((aligned(64))) ck_slot;

static struct {
    pthread_mutex_t owner;   // held by the caller using the pool
    pthread_mutex_t mtx;     // protects sleeping
    pthread_cond_t cv;
    int nworkers;            // guarded by owner
    _Atomic int pending;
    ck_slot slot[CK_MAX_THREADS];
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {{0}}};

static inline void cpu_relax(void) {
#if CK_X86
    _mm_pause();
#endif
}

// Waiting policy. A finished worker spins ~0.5 us on pause (~25 ns each), then calls sched_yield for a while
// (~0.4 us each when the core is otherwise idle; it hands the core to any other runnable thread, e.g. the
// engine's own parallel loops between two GEMMs, or the caller when the scheduler put both on one core),
// then sleeps on the condition variable. The caller waits for the workers the same way. Longer pause-spinning
// measurably slowed GEMMs interleaved with Dispatch loops (the spinner steals a core from them) and tiny
// multi-threaded GEMMs (when caller and worker shared a core). Yielding is not free either: a thread that
// yields in a loop still takes a large share of a core from a Dispatch worker placed on it. With 20000 yields
// (~10 ms) the CIFAR ResNet-20 training step on the 2-core Zen 3 took 0.45 s; with 200 (~0.1 ms), 0.33-0.34 s
// (and 0.34 s with none).
enum { CK_SPIN_PAUSE = 20, CK_SPIN_YIELD = 200, CK_WAIT_PAUSE = 20 };
static void *worker_main(void *p) {
    const int tid = (int)(intptr_t)p;
    ck_slot *s = &pool.slot[tid];
    unsigned seen = 0;  // no job is posted to a slot before its worker exists
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&s->gen, memory_order_acquire)) == seen) {
            // See the waiting policy above.
            if (++spins < CK_SPIN_PAUSE) { cpu_relax(); continue; }
            if (spins < CK_SPIN_PAUSE + CK_SPIN_YIELD) { sched_yield(); continue; }
            pthread_mutex_lock(&pool.mtx);
            while ((g = atomic_load_explicit(&s->gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&pool.cv, &pool.mtx);
            pthread_mutex_unlock(&pool.mtx);
            break;
        }
        seen = g;
        s->fn(s->arg, tid);
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

/// In a child of fork() the workers are gone: start from an empty pool.
static void pool_atfork_child(void) {
    pthread_mutex_init(&pool.owner, NULL);
    pthread_mutex_init(&pool.mtx, NULL);
    pthread_cond_init(&pool.cv, NULL);
    pool.nworkers = 0;
    atomic_store(&pool.pending, 0);
    for (int t = 0; t < CK_MAX_THREADS; t++) atomic_store(&pool.slot[t].gen, 0);
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static void pool_init(void) { pthread_atfork(NULL, NULL, pool_atfork_child); }

/// Runs fn(arg, t) for t in 0..<n (n <= CK_MAX_THREADS), t = 0 on the calling thread. Returns 0 (having run
/// nothing) when the pool is busy or workers cannot be started.
int ck_pool_run(ck_task_fn fn, void *arg, int n) {
    pthread_once(&pool_once, pool_init);
    if (pthread_mutex_trylock(&pool.owner) != 0) return 0;
    while (pool.nworkers < n - 1) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int tid = pool.nworkers + 1;
        int ok = pthread_create(&th, &at, worker_main, (void *)(intptr_t)tid) == 0;
        pthread_attr_destroy(&at);
        if (!ok) break;
        pool.nworkers++;
    }
    if (pool.nworkers < n - 1) n = pool.nworkers + 1;
    if (n <= 1) { pthread_mutex_unlock(&pool.owner); return 0; }
    atomic_store_explicit(&pool.pending, n - 1, memory_order_relaxed);
    for (int t = 1; t < n; t++) {
        pool.slot[t].fn = fn;
        pool.slot[t].arg = arg;
        atomic_fetch_add_explicit(&pool.slot[t].gen, 1, memory_order_release);
    }
    pthread_mutex_lock(&pool.mtx);
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mtx);
    fn(arg, 0);
    for (int spins = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; spins++) {
        if (spins < CK_WAIT_PAUSE) cpu_relax();
        else sched_yield();
    }
    pthread_mutex_unlock(&pool.owner);
    return 1;
}

// ---------------------------------------------------------------------------------------------------------
// Partition over threads: C is cut into a tm x tn grid of independent cells (at least one per thread),
// which the threads take from a shared counter, so a thread slowed down by another process on its core
// does not hold the others back for long.

typedef struct {
    const gemm_args *g;
    int tm, tn;             // grid of cells
    int mstep, nstep;       // rows / columns per cell (multiples of MR / of 48 or 16)
    _Atomic int next;       // next cell to compute
} mt_job;

static void mt_task(void *p, int tid) {
    (void)tid;
    mt_job *j = (mt_job *)p;
    const int cells = j->tm * j->tn;
    for (;;) {
        int c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= cells) break;
        int ci = c / j->tn, cj = c % j->tn;
        int i0 = ci * j->mstep, i1 = i0 + j->mstep;
        int j0 = cj * j->nstep, j1 = j0 + j->nstep;
        if (i1 > j->g->M) i1 = j->g->M;
        if (j1 > j->g->N) j1 = j->g->N;
        run_block(j->g, i0, i1, j0, j1);
    }
}

static long ceil_div(long a, long b) { return (a + b - 1) / b; }

/// Modelled time (in vector FMA units) of a tm x tn grid run on t threads, for micro-tiles of mr rows and
/// nr columns in vectors of vw floats; fills the cell sizes.
static double grid_cost(const gemm_args *g, int tm, int tn, int t, int mr, int nr, int vw, int *mstep,
                        int *nstep) {
    long ms = ceil_div(ceil_div(g->M, tm), mr) * mr;
    long ns = ceil_div(g->N, tn);
    ns = ns > 2 * nr ? ceil_div(ns, nr) * nr : ceil_div(ns, vw) * vw;
    if (ms > g->M) ms = g->M;
    if (ns > g->N) ns = g->N;
    *mstep = (int)ms;
    *nstep = (int)ns;
    long cm = ceil_div(g->M, ms), cn = ceil_div(g->N, ns);
    if (cm * cn < t) return -1;  // fewer cells than threads
    // The largest cell, rounded to the kernel's granularity, plus its packing (~2 floats per FMA slot).
    double rows = (double)ceil_div(ms, mr) * mr, cols = (double)ceil_div(ns, vw);
    double compute = rows * cols * g->K;
    double packing = (8.0 / vw) * (double)g->K * (double)(ms * ceil_div(ns, NC) + ns);
    return (double)ceil_div(cm * cn, t) * (compute + packing);
}

void ck_sgemm_mt(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, int threads) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { scale_c(M, N, beta, C, ldc); return; }
    gemm_args g = {transA != 0, transB != 0, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc};

    // Small products do not pay for handing work to another thread (~1 us when the threads sit on different
    // cores, several when the scheduler put them on one).
    const double flops = 2.0 * M * N * (double)K;
    int t = threads < CK_MAX_THREADS ? threads : CK_MAX_THREADS;
    if (flops < 2.0e6) t = 1;
    if (t > 1) {
        // Grids of t, 2t or 4t cells: more cells balance better under load but pack more; prefer them
        // unless the model says they cost more than 3%, and keep cells above ~2 MFLOP.
        int ms = 0, ns = 0;
        double best = -1;
        const int wide = ck_isa() == CK_ISA_AVX512;
        const int mr = wide ? MR : 6, nr = wide ? NR : 16, vw = wide ? 16 : 8;
        for (int f = 1; f <= 4; f *= 2) {
            int cells = t * f;
            if (f > 1 && flops / cells < 2.0e6) break;
            for (int tm = 1; tm <= cells; tm++) {
                if (cells % tm) continue;
                int a, b;
                double c = grid_cost(&g, tm, cells / tm, t, mr, nr, vw, &a, &b);
                if (c < 0) continue;
                if (f > 1) c /= 1.03;
                if (best < 0 || c <= best) { best = c; ms = a; ns = b; }
            }
        }
        if (best >= 0) {
            mt_job job = {&g, (int)ceil_div(M, ms), (int)ceil_div(N, ns), ms, ns, 0};
            int cells = job.tm * job.tn;
            if (ck_pool_run(mt_task, &job, cells < t ? cells : t)) return;
        }
    }
    run_block(&g, 0, M, 0, N);
}

void ck_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    ck_sgemm_mt(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1);
}

// Inference convolution in the channels-last layout (NHWC), with weights packed once and the output pass fused.
//
//   y[m, o] = act( sum_k A[m, k] * Wp[k, o] + bias[o] + residual[m, o] )
//
// Rows m are output pixels (image, oy, ox), columns o output channels, and k runs over the taps and input
// channels, k = (ky * KW + kx) * C + c. A is never formed: its packing reads each row's C-channel run for a
// tap straight from the input image (implicit GEMM; padding reads zeros), so a 3x3 convolution costs no
// im2col buffer and a 1x1 one is a plain product. The weights (PyTorch's (O, C, KH, KW) with an optional
// per-channel scale, i.e. a folded batch norm) are packed once into 16-column panels in blocks of 256 k,
// the layout the micro-kernel reads. Bias, residual and ReLU are applied to the accumulators in registers
// after the last k block, so the output is written once.
//
// Blocking: C is cut into cells of up to 168 rows x a share of the columns (sizes from a cost model of compute
// and memory traffic), taken by the threads from a shared counter; a cell packs its rows' A block (168 x 256,
// L2) per k block and runs the 6 x 16 micro-kernel over the cell's panels (a packed 256 x 16 weight panel is
// 16 KB, L1). Paths: a 6 x 32 kernel at the AVX-512 level (two panels at once, below), the 6 x 16 AVX2 + FMA
// kernel, and a portable one (the baseline level), which packs and blocks identically with plain C loops.

#define _GNU_SOURCE
#include "CKernels.h"
#include "ck_internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { CMR = 6, CNR = 16, CKB = 256, CMC = 168 };

long ck_conv_packed_size(int O, int C, int KH, int KW) {
    const long K = (long)C * KH * KW;
    return K * ((O + CNR - 1) / CNR * CNR);
}

void ck_conv_pack(const float *w, const float *scale, int O, int C, int KH, int KW, float *dst) {
    const long K = (long)C * KH * KW, taps = (long)KH * KW;
    const int panels = (O + CNR - 1) / CNR;
    for (long p0 = 0; p0 < K; p0 += CKB) {
        const long kc = K - p0 < CKB ? K - p0 : CKB;
        float *blk = dst + p0 * panels * CNR;
        for (int q = 0; q < panels; q++) {
            float *pan = blk + (long)q * kc * CNR;
            for (long k = 0; k < kc; k++) {
                const long kk = p0 + k, t = kk / C, c = kk % C;
                for (int j = 0; j < CNR; j++) {
                    const int o = q * CNR + j;
                    pan[k * CNR + j] = o < O ? w[((long)o * C + c) * taps + t] * (scale ? scale[o] : 1.0f) : 0.0f;
                }
            }
        }
    }
}

typedef struct {
    const float *x;
    int n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw;
    const float *wp;
    int o, panels;
    long K, M;
    const float *bias, *res;
    int relu;
    float *y;
    int mstep, cb;  // rows per cell; column chunks
    _Atomic int next;
    int kind;  // kernel_choice() when the job was set up
} conv_job;

/// An output row's image and the input position of its window's top-left tap (b = -1: a row past the panel's end).
typedef struct { int b, iy, ix; } row_origin;

/// Where a row's input pixel for tap t lies (NULL on padding or past the panel's end).
CK_INLINE const float *tap_ptr(const conv_job *j, row_origin r, long t) {
    if (r.b < 0) return NULL;
    const int iy = r.iy + (int)(t / j->kw), ix = r.ix + (int)(t % j->kw);
    if (iy < 0 || iy >= j->h || ix < 0 || ix >= j->w) return NULL;
    return j->x + (((long)r.b * j->h + iy) * j->w + ix) * j->c;
}

static void origins(const conv_job *j, long m0, int rows, row_origin *o) {
    const long ohw = (long)j->oh * j->ow;
    for (int r = 0; r < CMR; r++) {
        const long m = m0 + r;
        if (r >= rows) { o[r].b = -1; continue; }
        const long b = m / ohw, rem = m % ohw;
        o[r].b = (int)b;
        o[r].iy = (int)(rem / j->ow) * j->sh - j->ph;
        o[r].ix = (int)(rem % j->ow) * j->sw - j->pw;
    }
}

/// The run of A's columns [kk, kk + len) (len <= kend - kk) that each row of a panel reads contiguously from the
/// input, or not at all (padding: p[r] = NULL, zeros): one tap's channels from c0 on, extended over the next taps
/// of the same kernel row when every row has all of them inside the image (consecutive pixels are contiguous in
/// this layout: with few channels, as in a 7x7 stem on RGB, the runs are a kernel row long instead of 3 floats).
static long segment(const conv_job *j, const row_origin *org, long kk, long kend, const float **p) {
    const long t = kk / j->c, c0 = kk % j->c;
    const int kx = (int)(t % j->kw), ky = (int)(t / j->kw);
    int merge = kx + 1 < j->kw;
    for (int r = 0; r < CMR; r++) {
        p[r] = tap_ptr(j, org[r], t);
        if (p[r]) {
            p[r] += c0;
            if (org[r].ix + j->kw - 1 >= j->w) merge = 0;  // a later tap of this row falls off the right edge
        } else if (org[r].b >= 0 && org[r].iy + ky >= 0 && org[r].iy + ky < j->h) {
            merge = 0;  // off the left edge here, maybe inside for a later tap
        }
    }
    const long len = merge ? (long)(j->kw - kx) * j->c - c0 : j->c - c0;
    return len < kend - kk ? len : kend - kk;
}

// ---------------------------------------------------------------------------------------------------------
// Portable path

/// Writes one run of A's columns for a panel: d[q * CMR + r] = p[r][q] (0 where p[r] is NULL), q < len.
static void pack_run_portable(const float *const *p, long len, float *d) {
    for (int r = 0; r < CMR; r++)
        for (long q = 0; q < len; q++) d[q * CMR + r] = p[r] ? p[r][q] : 0.0f;
}

static void ukr_portable(int mr, int nr, long kc, const float *A, const float *B, float *C, long ldc, int accumulate,
                         const float *bias, const float *res, long ldr, int relu) {
    float acc[CMR][CNR];
    memset(acc, 0, sizeof acc);
    for (long k = 0; k < kc; k++)
        for (int r = 0; r < CMR; r++) {
            const float a = A[k * CMR + r];
            for (int q = 0; q < CNR; q++) acc[r][q] += a * B[k * CNR + q];
        }
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < nr; q++) {
            float v = acc[r][q];
            if (accumulate) v += C[r * ldc + q];
            if (bias) {
                v += bias[q];
                if (res) v += res[r * ldr + q];
                if (relu) v = v > 0.0f ? v : 0.0f;  // NaN gives 0, as the vector max below
            }
            C[r * ldc + q] = v;
        }
}

// ---------------------------------------------------------------------------------------------------------
// AVX2 + FMA path

#if CK_X86
/// The same with 8x8 register transposes (rows 6 and 7 are zeros; every store writes 8 floats, whose last two the
/// next column overwrites: the packing buffer has 8 floats of slack).
static CK_AVX2 void pack_run_avx2(const float *const *p, long len, float *d) {
    long q = 0;
    for (; q + 8 <= len; q += 8) {
        __m256 v[8];
        for (int r = 0; r < CMR; r++) v[r] = p[r] ? _mm256_loadu_ps(p[r] + q) : _mm256_setzero_ps();
        v[6] = v[7] = _mm256_setzero_ps();
        ck_tr8x8(v);
        for (int i = 0; i < 8; i++) _mm256_storeu_ps(d + (q + i) * CMR, v[i]);
    }
    if (q < len) {
        const int rem = (int)(len - q);
        const __m256i lm = ck_lanes8(rem);
        __m256 v[8];
        for (int r = 0; r < CMR; r++) v[r] = p[r] ? _mm256_maskload_ps(p[r] + q, lm) : _mm256_setzero_ps();
        v[6] = v[7] = _mm256_setzero_ps();
        ck_tr8x8(v);
        for (int i = 0; i < rem; i++) _mm256_storeu_ps(d + (q + i) * CMR, v[i]);
    }
}

/// C[mr x nr] (+)= A_panel * B_panel, then, with bias (the last k block): + bias + residual, ReLU.
CK_INLINE CK_AVX2 void ukr_avx2_body(const int mr, const int nv, long kc, const float *restrict A,
                                     const float *restrict B, float *restrict C, long ldc, int last,
                                     int accumulate, const float *bias, const float *res, long ldr, int relu) {
    __m256 c[CMR][2];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) c[r][v] = _mm256_setzero_ps();
    CK_UNROLL4
    for (long k = 0; k < kc; k++) {
        __m256 b[2];
        for (int v = 0; v < nv; v++) b[v] = _mm256_loadu_ps(B + 8 * v);
        B += CNR;
        for (int r = 0; r < mr; r++) {
            const __m256 a = _mm256_broadcast_ss(A + r);
            for (int v = 0; v < nv; v++) c[r][v] = _mm256_fmadd_ps(a, b[v], c[r][v]);
        }
        A += CMR;
    }
    const __m256i lm = ck_lanes8(last);
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < mr; r++) {
        for (int v = 0; v < nv; v++) {
            const int masked = v == nv - 1 && last < 8;
            float *q = C + r * ldc + 8 * v;
            __m256 o = c[r][v];
            if (accumulate) o = _mm256_add_ps(o, masked ? _mm256_maskload_ps(q, lm) : _mm256_loadu_ps(q));
            if (bias) {
                o = _mm256_add_ps(o, masked ? _mm256_maskload_ps(bias + 8 * v, lm) : _mm256_loadu_ps(bias + 8 * v));
                if (res) {
                    const float *s = res + r * ldr + 8 * v;
                    o = _mm256_add_ps(o, masked ? _mm256_maskload_ps(s, lm) : _mm256_loadu_ps(s));
                }
                if (relu) o = _mm256_max_ps(o, zero);  // max(NaN, 0) = 0
            }
            if (masked) _mm256_maskstore_ps(q, lm, o);
            else _mm256_storeu_ps(q, o);
        }
    }
}

typedef void (*conv_ukr_fn)(long kc, const float *A, const float *B, float *C, long ldc, int last, int accumulate,
                            const float *bias, const float *res, long ldr, int relu);
#define CK_DEF_CUKR(R, V)                                                                                     \
    static CK_AVX2 void cukr_##R##_##V(long kc, const float *A, const float *B, float *C, long ldc, int last, \
                                       int accumulate, const float *bias, const float *res, long ldr,        \
                                       int relu) {                                                           \
        ukr_avx2_body(R, V, kc, A, B, C, ldc, last, accumulate, bias, res, ldr, relu);                        \
    }
CK_DEF_CUKR(1, 1) CK_DEF_CUKR(2, 1) CK_DEF_CUKR(3, 1) CK_DEF_CUKR(4, 1) CK_DEF_CUKR(5, 1) CK_DEF_CUKR(6, 1)
CK_DEF_CUKR(1, 2) CK_DEF_CUKR(2, 2) CK_DEF_CUKR(3, 2) CK_DEF_CUKR(4, 2) CK_DEF_CUKR(5, 2) CK_DEF_CUKR(6, 2)
static const conv_ukr_fn cukr_table[CMR][2] = {{cukr_1_1, cukr_1_2}, {cukr_2_1, cukr_2_2}, {cukr_3_1, cukr_3_2},
                                               {cukr_4_1, cukr_4_2}, {cukr_5_1, cukr_5_2}, {cukr_6_1, cukr_6_2}};
#endif

// ---------------------------------------------------------------------------------------------------------
// Wide path: 6 rows x two 16-column panels at once (32 columns, 12 accumulators of 16 floats), the AVX-512
// kernel. Written once over 16-float vectors (clang's vector extensions) and compiled twice: for AVX-512 (one
// zmm register per vector), where it runs by default, and for AVX2 (two ymm registers per vector, more than
// the 16 registers hold, so slower than the 6 x 16 kernel there), which ck_conv_wide(1) selects so that the same
// body is tested on AVX2 CPUs. Every output element gets the same operations in the same order as in the AVX2
// kernel (one fused multiply-add per k, then + C, + bias, + residual, ReLU), so the two give identical bits.

#if CK_X86 && defined(__clang__) && defined(__has_builtin)
#if __has_builtin(__builtin_elementwise_fma)
#define CK_CONV_WIDE 1
#endif
#endif
#ifndef CK_CONV_WIDE
#define CK_CONV_WIDE 0
#endif

static _Atomic int wide_mode = -2;  // -1: at AVX-512; 0: never; 1: also at AVX2; -2: ENGINE_CONV_WIDE not read yet

static int current_wide_mode(void) {
    int mode = atomic_load_explicit(&wide_mode, memory_order_relaxed);
    if (mode == -2) {
        const char *e = getenv("ENGINE_CONV_WIDE");
        mode = -1;
        if (e && (!strcmp(e, "off") || !strcmp(e, "0"))) mode = 0;
        if (e && (!strcmp(e, "on") || !strcmp(e, "1"))) mode = 1;
        int expected = -2;  // a concurrent ck_conv_wide wins
        if (!atomic_compare_exchange_strong(&wide_mode, &expected, mode)) mode = expected;
    }
    return mode;
}

int ck_conv_wide(int mode) {
    const int previous = current_wide_mode();
    atomic_store_explicit(&wide_mode, mode < 0 ? -1 : mode > 0 ? 1 : 0, memory_order_relaxed);
    return previous;
}

#if CK_CONV_WIDE
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
typedef float v16f __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));

/// The first n (1..16) floats at p into a vector (zeros after them), and back (whole vectors as single moves).
CK_INLINE v16f w_ld(const float *p, int n) {
    v16f v = {0};
    if (n == 16) memcpy(&v, p, sizeof v);
    else memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}
CK_INLINE void w_st(float *p, v16f v, int n) {
    if (n == 16) memcpy(p, &v, sizeof v);
    else memcpy(p, &v, (size_t)n * sizeof(float));
}

/// C[mr x (16 (np - 1) + last)] (+)= A_panel * (np panels of B, the second kc * 16 floats after the first), then,
/// with bias (the last k block): + bias + residual, ReLU.
CK_INLINE void ukr_wide_body(const int mr, const int np, long kc, const float *restrict A, const float *restrict B,
                             float *restrict C, long ldc, int last, int accumulate, const float *bias,
                             const float *res, long ldr, int relu) {
    v16f c[CMR][2];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < np; v++) c[r][v] = (v16f){0};
    const float *B1 = B + kc * CNR;
    CK_UNROLL4
    for (long k = 0; k < kc; k++) {
        v16f b[2];
        memcpy(&b[0], B + k * CNR, sizeof(v16f));
        if (np > 1) memcpy(&b[1], B1 + k * CNR, sizeof(v16f));
        for (int r = 0; r < mr; r++) {
            const float s = A[k * CMR + r];
            const v16f a = {s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
            for (int v = 0; v < np; v++) c[r][v] = __builtin_elementwise_fma(a, b[v], c[r][v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < np; v++) {
            const int n = v == np - 1 ? last : 16;
            float *q = C + r * ldc + 16 * v;
            v16f o = c[r][v];
            if (accumulate) o = o + w_ld(q, n);
            if (bias) {
                o = o + w_ld(bias + 16 * v, n);
                if (res) o = o + w_ld(res + r * ldr + 16 * v, n);
                if (relu) o = (v16f)((v16i)o & (o > 0));  // NaN and -0 give +0, as max(o, 0) in the AVX2 kernel
            }
            w_st(q, o, n);
        }
}

#define CK_DEF_WUKR(ATTR, NAME, R, P)                                                                          \
    static ATTR void NAME##_##R##_##P(long kc, const float *A, const float *B, float *C, long ldc, int last,   \
                                      int accumulate, const float *bias, const float *res, long ldr, int relu) { \
        ukr_wide_body(R, P, kc, A, B, C, ldc, last, accumulate, bias, res, ldr, relu);                         \
    }
#define CK_DEF_WUKRS(ATTR, NAME)                                                                               \
    CK_DEF_WUKR(ATTR, NAME, 1, 1) CK_DEF_WUKR(ATTR, NAME, 2, 1) CK_DEF_WUKR(ATTR, NAME, 3, 1)                  \
    CK_DEF_WUKR(ATTR, NAME, 4, 1) CK_DEF_WUKR(ATTR, NAME, 5, 1) CK_DEF_WUKR(ATTR, NAME, 6, 1)                  \
    CK_DEF_WUKR(ATTR, NAME, 1, 2) CK_DEF_WUKR(ATTR, NAME, 2, 2) CK_DEF_WUKR(ATTR, NAME, 3, 2)                  \
    CK_DEF_WUKR(ATTR, NAME, 4, 2) CK_DEF_WUKR(ATTR, NAME, 5, 2) CK_DEF_WUKR(ATTR, NAME, 6, 2)                  \
    static const conv_ukr_fn NAME##_table[CMR][2] = {                                                          \
        {NAME##_1_1, NAME##_1_2}, {NAME##_2_1, NAME##_2_2}, {NAME##_3_1, NAME##_3_2},                          \
        {NAME##_4_1, NAME##_4_2}, {NAME##_5_1, NAME##_5_2}, {NAME##_6_1, NAME##_6_2}};
CK_DEF_WUKRS(CK_AVX512, wukr512)
CK_DEF_WUKRS(CK_AVX2, wukr2)
#pragma clang diagnostic pop
#endif

// ---------------------------------------------------------------------------------------------------------
// Driver

/// Packs rows [m0, m0 + mc) of A for k in [p0, p0 + kc) into dst[panel][k][r] (MR-row panels), run by run.
static void pack_a(const conv_job *j, long m0, int mc, long p0, int kc, float *dst, int avx2) {
    for (int ip = 0; ip < mc; ip += CMR) {
        const int rows = mc - ip < CMR ? mc - ip : CMR;
        row_origin org[CMR];
        origins(j, m0 + ip, rows, org);
        float *d = dst + (long)ip * kc;
        for (long k = 0; k < kc;) {
            const float *p[CMR];
            const long len = segment(j, org, p0 + k, p0 + kc, p);
#if CK_X86
            if (avx2) pack_run_avx2(p, len, d + k * CMR);
            else
#endif
                pack_run_portable(p, len, d + k * CMR);
            k += len;
        }
    }
    (void)avx2;
}

static __thread float *a_buf;
static __thread size_t a_cap;

/// Which kernel runs: 0 portable, 1 AVX2 6 x 16, 2 wide compiled for AVX2, 3 wide compiled for AVX-512.
static int kernel_choice(void) {
    const int isa = ck_isa();
    if (!CK_X86 || isa < CK_ISA_AVX2) return 0;
    const int mode = current_wide_mode();
    if (CK_CONV_WIDE && isa >= CK_ISA_AVX512 && mode != 0) return 3;
    if (CK_CONV_WIDE && mode == 1) return 2;
    return 1;
}

static void run_cell(conv_job *j, long m0, int mc, int q0, int q1) {
    const int kind = j->kind, avx2 = kind > 0;
    const size_t need = (size_t)CMC * CKB + 8;
    if (a_cap < need) {
        free(a_buf);
        a_buf = malloc(need * sizeof(float));
        a_cap = a_buf ? need : 0;
        if (!a_buf) abort();  // out of memory for 172 KB: nothing sensible to return
    }
    float *Ap = a_buf;
    const long ldc = j->o;
    for (long p0 = 0; p0 < j->K; p0 += CKB) {
        const int kc = (int)(j->K - p0 < CKB ? j->K - p0 : CKB);
        const int lastk = p0 + kc >= j->K;
        pack_a(j, m0, mc, p0, kc, Ap, avx2);
        const float *blk = j->wp + p0 * (long)j->panels * CNR;
        const int step = kind >= 2 ? 2 : 1;  // panels per micro-kernel call
        for (int q = q0; q < q1; q += step) {
            const int np = q1 - q < step ? q1 - q : step;
            const float *bp = blk + (long)q * kc * CNR;
            const int col = q * CNR, nr = j->o - col < np * CNR ? j->o - col : np * CNR;
            const float *bias = lastk ? (j->bias ? j->bias + col : NULL) : NULL;
            for (int ir = 0; ir < mc; ir += CMR) {
                const int mr = mc - ir < CMR ? mc - ir : CMR;
                const long m = m0 + ir;
                float *cp = j->y + m * ldc + col;
                const float *res = bias && j->res ? j->res + m * ldc + col : NULL;
                const int relu = lastk && j->relu;
#if CK_CONV_WIDE
                if (kind >= 2) {
                    const conv_ukr_fn(*table)[2] = kind == 3 ? wukr512_table : wukr2_table;
                    table[mr - 1][np - 1](kc, Ap + (long)ir * kc, bp, cp, ldc, nr - CNR * (np - 1), p0 > 0, bias, res,
                                          ldc, relu);
                    continue;
                }
#endif
#if CK_X86
                if (avx2) {
                    const int nv = (nr + 7) / 8;
                    cukr_table[mr - 1][nv - 1](kc, Ap + (long)ir * kc, bp, cp, ldc, nr - 8 * (nv - 1), p0 > 0, bias,
                                               res, ldc, relu);
                    continue;
                }
#endif
                ukr_portable(mr, nr, kc, Ap + (long)ir * kc, bp, cp, ldc, p0 > 0, bias, res, ldc, relu);
            }
        }
    }
}

static void conv_task(void *p, int tid) {
    (void)tid;
    conv_job *j = (conv_job *)p;
    const int rb = (int)((j->M + j->mstep - 1) / j->mstep), cells = rb * j->cb;
    const int per = (j->panels + j->cb - 1) / j->cb;
    for (;;) {
        const int cell = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (cell >= cells) break;
        const int ri = cell / j->cb, ci = cell % j->cb;
        const long m0 = (long)ri * j->mstep;
        const int mc = (int)(j->M - m0 < j->mstep ? j->M - m0 : j->mstep);
        const int q0 = ci * per, q1 = q0 + per < j->panels ? q0 + per : j->panels;
        if (q0 < q1) run_cell(j, m0, mc, q0, q1);
    }
}

void ck_conv_nhwc(const float *x, int N, int H, int W, int C, const float *wp, int O, int KH, int KW, int SH, int SW,
                  int PH, int PW, const float *bias, const float *residual, int relu, float *y, int threads) {
    const int oh = (H + 2 * PH - KH) / SH + 1, ow = (W + 2 * PW - KW) / SW + 1;
    if (N <= 0 || O <= 0 || oh <= 0 || ow <= 0) return;
    conv_job j = {x, N, H, W, C, oh, ow, KH, KW, SH, SW, PH, PW, wp, O, (O + CNR - 1) / CNR,
                  (long)C * KH * KW, (long)N * oh * ow, bias, residual, relu, y, CMC, 1, 0, kernel_choice()};
    if (j.K == 0) {  // no inputs: the output is the epilogue of zeros
        for (long m = 0; m < j.M; m++)
            for (int o = 0; o < O; o++) {
                float v = (bias ? bias[o] : 0.0f) + (residual ? residual[m * O + o] : 0.0f);
                y[m * O + o] = relu ? (v > 0.0f ? v : 0.0f) : v;
            }
        return;
    }
    // Cells: rb row blocks (multiples of 6 rows, at most CMC) x cb column chunks (whole panels), chosen by a
    // cost model in cycles: the largest cell's multiply-adds (tiles rounded up) times the rounds of cells per
    // thread, plus the memory traffic a thread shares: each row block reads all the weights of its chunks (from
    // L3), each column chunk packs all its rows of A again.
    // The 6 x 32 kernel takes panels in pairs: an odd chunk costs as much as the next even one; at the AVX-512
    // level a cycle holds 32 multiply-adds instead of 16.
    const int t = threads < 1 ? 1 : threads > 64 ? 64 : threads, pairs = j.kind >= 2;
    const double macs_per_cycle = j.kind == 3 ? 32.0 : 16.0;
    const long tiles = (j.M + CMR - 1) / CMR, rbmin = (j.M + CMC - 1) / CMC;
    double best = -1;
    for (int cb = 1; cb <= j.panels && cb <= 8 * t; cb++) {
        const int per = (j.panels + cb - 1) / cb, cbe = (j.panels + per - 1) / per;
        for (long rb = rbmin; rb <= tiles && rb <= rbmin + 8 * t; rb++) {
            const long ms = ((j.M + rb - 1) / rb + CMR - 1) / CMR * CMR, rbe = (j.M + ms - 1) / ms;
            const long cells = rbe * cbe;
            const double rounds = (double)((cells + t - 1) / t);
            const int pe = pairs ? (per + 1) / 2 * 2 : per;
            const double compute = rounds * (double)ms * pe * CNR * (double)j.K / macs_per_cycle;
            const double traffic = ((double)rbe * j.K * j.panels * CNR / 8.0 + (double)cbe * j.M * j.K / 4.0) / t;
            const double cost = compute + traffic;
            if (best < 0 || cost < best) { best = cost; j.mstep = (int)ms; j.cb = cbe; }
        }
    }
    const long cells = ((j.M + j.mstep - 1) / j.mstep) * j.cb;
    const double flops = 2.0 * (double)j.M * O * (double)j.K;
    if (t > 1 && flops >= 4.0e6 && ck_pool_run(conv_task, &j, cells < t ? (int)cells : t)) return;
    conv_task(&j, 0);
}

// ---------------------------------------------------------------------------------------------------------
// Layout changes

static void transpose_portable(const float *src, long lds, int rows, int cols, float *dst, long ldd) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(long)j * ldd + i] = src[(long)i * lds + j];
}

#if CK_X86
static CK_AVX2 void transpose_avx2(const float *src, long lds, int rows, int cols, float *dst, long ldd) {
    const int r8 = rows / 8 * 8, c8 = cols / 8 * 8;
    for (int i = 0; i < r8; i += 8)
        for (int j = 0; j < c8; j += 8) {
            __m256 v[8];
            for (int r = 0; r < 8; r++) v[r] = _mm256_loadu_ps(src + (long)(i + r) * lds + j);
            ck_tr8x8(v);
            for (int r = 0; r < 8; r++) _mm256_storeu_ps(dst + (long)(j + r) * ldd + i, v[r]);
        }
    if (c8 < cols) transpose_portable(src + c8, lds, rows, cols - c8, dst + (long)c8 * ldd, ldd);
    if (r8 < rows) transpose_portable(src + (long)r8 * lds, lds, rows - r8, c8, dst + r8, ldd);
}
#endif

void ck_transpose(const float *src, long lds, int rows, int cols, float *dst, long ldd) {
#if CK_X86
    if (ck_isa() >= CK_ISA_AVX2) { transpose_avx2(src, lds, rows, cols, dst, ldd); return; }
#endif
    transpose_portable(src, lds, rows, cols, dst, ldd);
}

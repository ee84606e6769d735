// im2col (any kernel, stride, padding, dilation); the stride-1 case first.
//
// "Same" width (OW == W, the usual 3x3 / pad 1 case): for one row (c, i, j) of the column matrix and one
// image, the valid output rows read one contiguous run of the input plane shifted by (i, j), so the copy is a
// single block copy, followed by zeroing the one or two columns that fell on the left / right padding (they
// picked up the neighbouring input row) and the output rows above / below the input.
// Other widths: row by row, 16 columns per masked load/store. Strided convolutions go row by row too; at
// horizontal stride 2 each 16 output columns are two masked loads and a permute that keeps the even lanes
// (and col2im's rows the mirror image), other strides a scalar loop. Each helper has an AVX-512 and an AVX2
// variant (8 columns at a time) and a portable loop, chosen by ck_isa().
//
// The block copy loads 8 vectors before storing them. Copying these shifted rows one vector at a time
// (load, store, load, ...) measured 2-3x slower than memcpy, and 8-vector batches ~1.5x faster than memcpy
// (32x32 planes, micro-benchmark). Our reading: the input plane and the column rows lie a multiple of 4 KiB
// apart, so a load a few bytes away from a pending store in the low 12 address bits is treated as dependent
// on it ("4K aliasing"); batching keeps the loads ahead of the stores.
#include "CKernels.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CKI_X86 1
#define CKI_AVX512 __attribute__((target("avx512f")))
#define CKI_AVX2 __attribute__((target("avx2,fma,avx")))
#else
#define CKI_X86 0
#endif

#if CKI_X86
static CKI_AVX512 void copy_avx512(float *d, const float *s, long n) {
    // No `restrict`: it would let the compiler interleave the loads with the stores again.
    long k = 0;
    for (; k + 128 <= n; k += 128) {
        __m512 v[8];
        for (int q = 0; q < 8; q++) v[q] = _mm512_loadu_ps(s + k + 16 * q);
        for (int q = 0; q < 8; q++) _mm512_storeu_ps(d + k + 16 * q, v[q]);
    }
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(d + k, _mm512_loadu_ps(s + k));
    if (k < n) {
        const __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        _mm512_mask_storeu_ps(d + k, m, _mm512_maskz_loadu_ps(m, s + k));
    }
}

/// Lanes l of the 16 columns starting at ox with lo <= ox + l < min(hi, ow).
static inline unsigned lane_mask(int ox, int lo, int hi, int ow) {
    int a = lo - ox, b = (hi < ow ? hi : ow) - ox;
    if (a < 0) a = 0;
    if (b > 16) b = 16;
    if (b <= a) return 0;
    return ((b == 16 ? 0xFFFFu : ((1u << b) - 1)) >> a) << a;
}

/// One output row: d[ox] = s[ox] for lo <= ox < hi, else 0 (ox < ow). Lanes outside [lo, hi) are masked
/// off and never read.
static CKI_AVX512 void row_masked(float *d, const float *s, int lo, int hi, int ow) {
    int ox = 0;
    for (; ox + 16 <= ow; ox += 16) {
        if (ox >= lo && ox + 16 <= hi) _mm512_storeu_ps(d + ox, _mm512_loadu_ps(s + ox));
        else _mm512_storeu_ps(d + ox, _mm512_maskz_loadu_ps((__mmask16)lane_mask(ox, lo, hi, ow), s + ox));
    }
    if (ox < ow) {
        const __mmask16 st = (__mmask16)((1u << (ow - ox)) - 1);
        _mm512_mask_storeu_ps(d + ox, st, _mm512_maskz_loadu_ps((__mmask16)lane_mask(ox, lo, hi, ow), s + ox));
    }
}

/// Bits 0..7 of m spread to the even bits 0, 2, .., 14.
static inline unsigned spread_even(unsigned m) {
    m &= 0xFF;
    m = (m | (m << 4)) & 0x0F0F;
    m = (m | (m << 2)) & 0x3333;
    return (m | (m << 1)) & 0x5555;
}

/// One output row at horizontal stride 2: d[ox] = s[2 * ox] for lo <= ox < hi, else 0 (ox < ow). Two
/// masked loads of 16 (only the even lanes that are needed are read) and a permute that keeps the even lanes.
static CKI_AVX512 void row_stride2(float *d, const float *s, int lo, int hi, int ow) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int ox = 0; ox < ow; ox += 16) {
        const unsigned m = lane_mask(ox, lo, hi, ow);
        const __m512 a = _mm512_maskz_loadu_ps((__mmask16)spread_even(m), s + 2 * ox);
        const __m512 b = _mm512_maskz_loadu_ps((__mmask16)spread_even(m >> 8), s + 2 * ox + 16);
        const __m512 v = _mm512_permutex2var_ps(a, even, b);
        if (ox + 16 <= ow) _mm512_storeu_ps(d + ox, v);
        else _mm512_mask_storeu_ps(d + ox, (__mmask16)((1u << (ow - ox)) - 1), v);
    }
}

/// col2im's row at horizontal stride 2: d[2 * ox] += s[ox] for lo <= ox < hi (only those lanes are touched).
static CKI_AVX512 void add_row_stride2(float *d, const float *s, int lo, int hi) {
    const __m512i first = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i second = _mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
    for (int ox = lo & ~15; ox < hi; ox += 16) {
        const unsigned m = lane_mask(ox, lo, hi, 1 << 30);
        const __m512 v = _mm512_maskz_loadu_ps((__mmask16)m, s + ox);
        const __mmask16 m0 = (__mmask16)spread_even(m), m1 = (__mmask16)spread_even(m >> 8);
        float *p = d + 2 * ox;
        _mm512_mask_storeu_ps(p, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, p), _mm512_permutexvar_ps(first, v)));
        _mm512_mask_storeu_ps(p + 16, m1,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m1, p + 16), _mm512_permutexvar_ps(second, v)));
    }
}

// AVX2 versions of the same helpers (8 lanes; masked lanes through vmaskmov, which never faults on them).

static CKI_AVX2 void copy_avx2(float *d, const float *s, long n) {
    long k = 0;  // 8-vector batches, as above (4K aliasing)
    for (; k + 64 <= n; k += 64) {
        __m256 v[8];
        for (int q = 0; q < 8; q++) v[q] = _mm256_loadu_ps(s + k + 8 * q);
        for (int q = 0; q < 8; q++) _mm256_storeu_ps(d + k + 8 * q, v[q]);
    }
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(d + k, _mm256_loadu_ps(s + k));
    for (; k < n; k++) d[k] = s[k];
}

/// A ymm mask from the low 8 bits of m (lane l set when bit l is).
static CKI_AVX2 __m256i mask8(unsigned m) {
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bits), bits);
}

/// Lanes l of the 8 columns starting at ox with lo <= ox + l < min(hi, ow).
static inline unsigned lane_mask8(int ox, int lo, int hi, int ow) {
    int a = lo - ox, b = (hi < ow ? hi : ow) - ox;
    if (a < 0) a = 0;
    if (b > 8) b = 8;
    if (b <= a) return 0;
    return ((0xFFu >> (8 - b)) >> a) << a;
}

static CKI_AVX2 void row_masked_avx2(float *d, const float *s, int lo, int hi, int ow) {
    int ox = 0;
    for (; ox + 8 <= ow; ox += 8) {
        if (ox >= lo && ox + 8 <= hi) _mm256_storeu_ps(d + ox, _mm256_loadu_ps(s + ox));
        else _mm256_storeu_ps(d + ox, _mm256_maskload_ps(s + ox, mask8(lane_mask8(ox, lo, hi, ow))));
    }
    for (; ox < ow; ox++) d[ox] = ox >= lo && ox < hi ? s[ox] : 0.0f;
}

/// Bits 0..3 of m spread to the even bits 0, 2, 4, 6.
static inline unsigned spread_even4(unsigned m) {
    m &= 0xF;
    m = (m | (m << 2)) & 0x33;
    return (m | (m << 1)) & 0x55;
}

static CKI_AVX2 void row_stride2_avx2(float *d, const float *s, int lo, int hi, int ow) {
    int ox = 0;
    for (; ox + 8 <= ow; ox += 8) {
        if (ox >= lo && ox + 8 <= hi) {
            // Inside the row: s[2 ox .. 2 ox + 14], read as [s0..s7] and [s7..s14] (never past the last
            // element needed); [s0 s2 s8 s10 | s4 s6 s12 s14], then the middle 64-bit lanes swapped.
            const __m256 a = _mm256_loadu_ps(s + 2 * ox), b = _mm256_loadu_ps(s + 2 * ox + 7);
            const __m256 v = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));
            _mm256_storeu_ps(d + ox, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8)));
            continue;
        }
        const unsigned m = lane_mask8(ox, lo, hi, ow);
        const __m256 a = _mm256_maskload_ps(s + 2 * ox, mask8(spread_even4(m)));
        const __m256 b = _mm256_maskload_ps(s + 2 * ox + 8, mask8(spread_even4(m >> 4)));
        // [a0 a2 b0 b2 | a4 a6 b4 b6] -> [a0 a2 a4 a6 b0 b2 b4 b6]
        const __m256 v = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
        _mm256_storeu_ps(d + ox, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8)));
    }
    for (; ox < ow; ox++) d[ox] = ox >= lo && ox < hi ? s[2L * ox] : 0.0f;
}

/// The odd elements between the even ones are loaded and stored back with their bits unchanged (a blend),
/// which is much faster than masked stores on AMD CPUs; only elements up to d[2 * (hi - 1)] are read or
/// written (a last block that would reach d[2 * hi - 1] is done one element at a time).
static CKI_AVX2 void add_row_stride2_avx2(float *d, const float *s, int lo, int hi) {
    const __m256i first = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), second = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
    int ox = lo;
    for (; ox + 8 < hi; ox += 8) {
        const __m256 v = _mm256_loadu_ps(s + ox);
        float *p = d + 2L * ox;
        const __m256 p0 = _mm256_loadu_ps(p), p1 = _mm256_loadu_ps(p + 8);
        _mm256_storeu_ps(p, _mm256_blend_ps(p0, _mm256_add_ps(p0, _mm256_permutevar8x32_ps(v, first)), 0x55));
        _mm256_storeu_ps(p + 8, _mm256_blend_ps(p1, _mm256_add_ps(p1, _mm256_permutevar8x32_ps(v, second)), 0x55));
    }
    for (; ox < hi; ox++) d[2L * ox] += s[ox];
}
#endif

/// dst[k] = src[k], k < n (the batched vector copies at the AVX-512 and AVX2 levels).
static __attribute__((noinline)) void copy_block(int isa, float *d, const float *s, long n) {
#if CKI_X86
    if (isa == CK_ISA_AVX512) { copy_avx512(d, s, n); return; }
    if (isa == CK_ISA_AVX2) { copy_avx2(d, s, n); return; }
#endif
    memcpy(d, s, sizeof(float) * (size_t)n);
}

/// One output row of a convolution whose width differs from the input's: d[ox] = s[ox] for lo <= ox < hi,
/// else 0 (ox < ow).
static __attribute__((noinline)) void copy_row(int isa, float *d, const float *s, int lo, int hi, int ow) {
#if CKI_X86
    if (isa == CK_ISA_AVX512) { row_masked(d, s, lo, hi, ow); return; }
    if (isa == CK_ISA_AVX2) { row_masked_avx2(d, s, lo, hi, ow); return; }
#endif
    for (int ox = 0; ox < ow; ox++) d[ox] = ox >= lo && ox < hi ? s[ox] : 0.0f;
}

// The loop below is kept plain (scalar set-up, copies in separate functions): variants with the copy
// inlined into one AVX-512 function, or called through a function pointer, ran up to 2x slower on 8x8
// planes in a micro-benchmark (for reasons not pinned down; the compiler's code for them was much larger).
static inline __attribute__((always_inline)) void im2col_impl(const float *x, long xs, int H, int W, int KH, int KW,
                                                              int PH, int PW, int DH, int DW, int OW, int oy0,
                                                              int rows, int nb, int r0, int r1, float *cols,
                                                              long L) {
    const int isa = ck_isa();  // once per call, not per row: the copies below are short and many
    const long hw = (long)H * W;
    const int oy1 = oy0 + rows, kk = KH * KW;
    int c = r0 / kk, i = (r0 % kk) / KW, j = r0 % KW;   // channel and kernel offset of row r
    for (int r = r0; r < r1; r++) {
        const int ixb = j * DW - PW;                  // input column of output column 0
        int lo = ixb < 0 ? -ixb : 0, hi = W - ixb < OW ? W - ixb : OW;   // output columns that read the input
        if (lo > OW) lo = OW;
        if (hi < lo) hi = lo;
        int vlo = PH - i * DH, vhi = H + PH - i * DH;                     // output rows that read an input row
        if (vlo < oy0) vlo = oy0;
        if (vlo > oy1) vlo = oy1;
        if (vhi > oy1) vhi = oy1;
        if (vhi < vlo || hi == lo) vhi = vlo;
        const int vrows = vhi - vlo;
        const long srow = (long)(vlo - PH + i * DH) * W + ixb + c * hw;   // input of (vlo, column 0)
        float *d = cols + (long)r * L;
        for (int bb = 0; bb < nb; bb++, d += (long)rows * OW) {
            if (vlo > oy0) memset(d, 0, sizeof(float) * (size_t)(vlo - oy0) * (size_t)OW);
            float *first = d + (long)(vlo - oy0) * OW;
            const float *src = x + bb * xs + srow;
            if (vrows && OW == W) {
                // One block: output columns lo ..< hi of rows vlo ..< vhi are contiguous in both; then the
                // padding columns (usually one each side), which picked up the neighbouring input rows.
                copy_block(isa, first + lo, src + lo, (long)vrows * OW - lo - (OW - hi));
                if (lo == 1) for (int t = 0; t < vrows; t++) first[(long)t * OW] = 0.0f;
                else if (lo > 1)
                    for (int t = 0; t < vrows; t++) memset(first + (long)t * OW, 0, sizeof(float) * (size_t)lo);
                if (hi == OW - 1) for (int t = 0; t < vrows; t++) first[(long)t * OW + hi] = 0.0f;
                else if (hi < OW - 1)
                    for (int t = 0; t < vrows; t++)
                        memset(first + (long)t * OW + hi, 0, sizeof(float) * (size_t)(OW - hi));
            } else {
                for (int t = 0; t < vrows; t++) copy_row(isa, first + (long)t * OW, src + (long)t * W, lo, hi, OW);
            }
            if (oy1 > vhi) memset(d + (long)(vhi - oy0) * OW, 0, sizeof(float) * (size_t)(oy1 - vhi) * (size_t)OW);
        }
        if (++j == KW) { j = 0; if (++i == KH) { i = 0; c++; } }
    }
}

void ck_im2col_s1(const float *x, long xs, int C, int H, int W, int KH, int KW, int PH, int PW, int DH, int DW,
                  int OW, int oy0, int rows, int nb, int r0, int r1, float *cols, long L) {
    (void)C;
    // The common case, one whole image through a 3x3 / pad 1 kernel, gets its own instantiation: with the
    // sizes known the loop is faster on small planes (micro-benchmark, us per image: 5.6 vs 8.7 for 64 x 8x8,
    // 4.1 vs 5.8 for 32 x 16x16, equal for 16 x 32x32).
    if (KH == 3 && KW == 3 && PH == 1 && PW == 1 && DH == 1 && DW == 1 && OW == W && oy0 == 0 && rows == H && nb == 1)
        im2col_impl(x, 0, H, W, 3, 3, 1, 1, 1, 1, W, 0, H, 1, r0, r1, cols, L);
    else
        im2col_impl(x, xs, H, W, KH, KW, PH, PW, DH, DW, OW, oy0, rows, nb, r0, r1, cols, L);
}

/// One output row at horizontal stride sw: d[ox] = s[ox * sw] for lo <= ox < hi, else 0 (ox < ow).
static __attribute__((noinline)) void strided_row(int isa, float *d, const float *s, int sw, int lo, int hi,
                                                 int ow) {
#if CKI_X86
    if (sw != 2) isa = CK_ISA_BASELINE;
    if (isa == CK_ISA_AVX512) { row_stride2(d, s, lo, hi, ow); return; }
    if (isa == CK_ISA_AVX2) { row_stride2_avx2(d, s, lo, hi, ow); return; }
#endif
    int ox = 0;
    for (; ox < lo; ox++) d[ox] = 0.0f;
    for (; ox < hi; ox++) d[ox] = s[(long)ox * sw];
    for (; ox < ow; ox++) d[ox] = 0.0f;
}

void ck_im2col(const float *x, long xs, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int DH,
               int DW, int OW, int oy0, int rows, int nb, int r0, int r1, float *cols, long L) {
    if (SH == 1 && SW == 1) {
        ck_im2col_s1(x, xs, C, H, W, KH, KW, PH, PW, DH, DW, OW, oy0, rows, nb, r0, r1, cols, L);
        return;
    }
    const int isa = ck_isa();
    const long hw = (long)H * W;
    const int kk = KH * KW;
    int c = r0 / kk, i = (r0 % kk) / KW, j = r0 % KW;   // channel and kernel offset of row r
    for (int r = r0; r < r1; r++) {
        const int ixb = j * DW - PW;                  // input column of output column 0
        // Output columns [lo, hi) read the input: 0 <= ox * SW + ixb < W.
        int lo = ixb >= 0 ? 0 : (-ixb + SW - 1) / SW;
        int hi = W - ixb <= 0 ? 0 : (W - ixb + SW - 1) / SW;
        if (hi > OW) hi = OW;
        if (lo > hi) lo = hi;
        float *d = cols + (long)r * L;
        for (int bb = 0; bb < nb; bb++) {
            const float *plane = x + bb * xs + c * hw;
            for (int oy = oy0; oy < oy0 + rows; oy++, d += OW) {
                const int iy = oy * SH - PH + i * DH;
                if (iy < 0 || iy >= H) memset(d, 0, sizeof(float) * (size_t)OW);
                else strided_row(isa, d, plane + (long)iy * W + ixb, SW, lo, hi, OW);
            }
        }
        if (++j == KW) { j = 0; if (++i == KH) { i = 0; c++; } }
    }
}

void ck_add_row_strided(float *d, const float *s, int sw, int lo, int hi) {
#if CKI_X86
    const int isa = sw == 2 ? ck_isa() : CK_ISA_BASELINE;
    if (isa == CK_ISA_AVX512) { add_row_stride2(d, s, lo, hi); return; }
    if (isa == CK_ISA_AVX2) { add_row_stride2_avx2(d, s, lo, hi); return; }
#endif
    for (int ox = lo; ox < hi; ox++) d[(long)ox * sw] += s[ox];
}

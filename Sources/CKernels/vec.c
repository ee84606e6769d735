// Small vector helpers for the engine's memory-bound loops (Swift code is compiled for baseline x86-64, so
// its loops use 4-wide SSE): AVX-512 versions chosen at run time, portable loops otherwise.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CKV_AVX512 __attribute__((target("avx512f")))

static CKV_AVX512 void add_inplace_avx512(float *d, const float *s, long n) {
    long k = 0;
    for (; k + 32 <= n; k += 32) {
        _mm512_storeu_ps(d + k, _mm512_add_ps(_mm512_loadu_ps(d + k), _mm512_loadu_ps(s + k)));
        _mm512_storeu_ps(d + k + 16, _mm512_add_ps(_mm512_loadu_ps(d + k + 16), _mm512_loadu_ps(s + k + 16)));
    }
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(d + k, _mm512_add_ps(_mm512_loadu_ps(d + k), _mm512_loadu_ps(s + k)));
    if (k < n) {
        const __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        _mm512_mask_storeu_ps(d + k, m,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + k), _mm512_maskz_loadu_ps(m, s + k)));
    }
}
#endif

void ck_add_inplace(float *d, const float *s, long n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (ck_has_avx512()) { add_inplace_avx512(d, s, n); return; }
#endif
    for (long k = 0; k < n; k++) d[k] += s[k];
}

#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H

// What the kernel files share and the module's public header does not show: the thread pool, the target
// attributes of the instruction-set variants (x86 only), and small AVX2 helpers.

typedef void (*ck_task_fn)(void *arg, int tid);

/// Runs fn(arg, t) for t in 0..<n on the GEMM's persistent thread pool (sgemm.c), t = 0 on the calling thread.
/// Returns 0, having run nothing, when the pool is busy (a concurrent or nested call) or cannot start workers.
int ck_pool_run(ck_task_fn fn, void *arg, int n);

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <stdint.h>
#define CK_X86 1
#define CK_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,avx2,avx")))
#define CK_AVX2 __attribute__((target("avx2,fma,avx")))
#else
#define CK_X86 0
#endif

#define CK_INLINE static inline __attribute__((always_inline))

#if defined(__clang__)
#define CK_UNROLL4 _Pragma("clang loop unroll_count(4)")
#elif defined(__GNUC__)
#define CK_UNROLL4 _Pragma("GCC unroll 4")
#else
#define CK_UNROLL4
#endif

#if CK_X86

/// A ymm lane mask with the first `live` (1..8) lanes set.
CK_INLINE CK_AVX2 __m256i ck_lanes8(int live) {
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - live));
}

/// In-register transpose of an 8x8 block: on return r[c] holds column c of the input rows. AVX instructions
/// only, so that the AVX-512 code inlines it too.
CK_INLINE CK_AVX2 void ck_tr8x8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

#endif

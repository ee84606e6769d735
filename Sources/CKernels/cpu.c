// The one place that decides which instruction set the kernels run with.
//
// Every kernel with architecture-specific code asks ck_isa() and picks its AVX-512, AVX2 + FMA or baseline
// variant from the answer; nothing else in the project tests CPU features. The level is the best the CPU
// supports, capped by the environment variable ENGINE_ISA (avx512 | avx2 | baseline, read once, at the first
// call) or by ck_set_isa (tests and benchmarks run every path in turn). A cap above what the CPU supports
// falls back to what it supports. On other architectures (aarch64: NEON is part of the baseline, and the
// baseline C loops are compiled with it) the only level is CK_ISA_BASELINE.
#include "CKernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int ck_cpu_level = -1;  // best level the CPU supports (-1: not yet probed)
static _Atomic int ck_cap = -1;        // cap from ENGINE_ISA or ck_set_isa (-1: not yet read)

int ck_cpu_isa(void) {
    int s = atomic_load_explicit(&ck_cpu_level, memory_order_relaxed);
    if (s >= 0) return s;
    s = CK_ISA_BASELINE;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
                       && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    s = avx512 ? CK_ISA_AVX512 : avx2 ? CK_ISA_AVX2 : CK_ISA_BASELINE;
#endif
    atomic_store_explicit(&ck_cpu_level, s, memory_order_relaxed);
    return s;
}

int ck_isa_from_name(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "avx512")) return CK_ISA_AVX512;
    if (!strcmp(name, "avx2")) return CK_ISA_AVX2;
    if (!strcmp(name, "baseline")) return CK_ISA_BASELINE;
    return -1;
}

const char *ck_isa_name(int level) {
    switch (level) {
    case CK_ISA_AVX512: return "avx512";
    case CK_ISA_AVX2: return "avx2";
    default: return "baseline";
    }
}

int ck_isa(void) {
    int cap = atomic_load_explicit(&ck_cap, memory_order_relaxed);
    if (cap < 0) {
        cap = ck_isa_from_name(getenv("ENGINE_ISA"));
        if (cap < 0) cap = CK_ISA_AVX512;
        int expected = -1;  // a concurrent ck_set_isa wins
        if (!atomic_compare_exchange_strong(&ck_cap, &expected, cap)) cap = expected;
    }
    const int cpu = ck_cpu_isa();
    return cap < cpu ? cap : cpu;
}

int ck_set_isa(int level) {
    if (level < CK_ISA_BASELINE) level = CK_ISA_BASELINE;
    if (level > CK_ISA_AVX512) level = CK_ISA_AVX512;
    atomic_store_explicit(&ck_cap, level, memory_order_relaxed);
    return ck_isa();
}

// ---------------------------------------------------------------------------------------------------------
// The arithmetic ceiling of one core at the active level, for benchmark reports: `iters` steps of 12
// independent vector FMA chains (enough to cover the FMA latency on two pipes), nothing loaded or stored.

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

__attribute__((target("avx512f"))) static float fma_loop_avx512(long iters) {
    __m512 acc[12], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    float t = 0;
    for (int i = 0; i < 12; i++) t += _mm512_reduce_add_ps(acc[i]);
    return t;
}

__attribute__((target("avx2,fma,avx"))) static float fma_loop_avx2(long iters) {
    __m256 acc[12], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    float t = 0, v[8];
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(v, acc[i]);
        for (int l = 0; l < 8; l++) t += v[l];
    }
    return t;
}
#endif

/// Baseline: 4-float vectors, a multiply and an add per step (no FMA in the baseline instruction set).
static float fma_loop_base(long iters) {
    typedef float v4f __attribute__((vector_size(16)));
    v4f acc[12], m = {0.999999f, 0.999999f, 0.999999f, 0.999999f}, a = {1e-7f, 1e-7f, 1e-7f, 1e-7f};
    for (int i = 0; i < 12; i++) acc[i] = (v4f){(float)i, (float)i, (float)i, (float)i};
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++) acc[i] = acc[i] * m + a;
    float t = 0;
    for (int i = 0; i < 12; i++) t += acc[i][0] + acc[i][1] + acc[i][2] + acc[i][3];
    return t;
}

double ck_peak_flops_loop(long iters, float *sink) {
    float t;
    double lanes;
    switch (ck_isa()) {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    case CK_ISA_AVX512: t = fma_loop_avx512(iters); lanes = 16; break;
    case CK_ISA_AVX2: t = fma_loop_avx2(iters); lanes = 8; break;
#endif
    default: t = fma_loop_base(iters); lanes = 4; break;
    }
    *sink = t;
    return 2.0 * lanes * 12.0 * (double)iters;
}

#ifndef CK_VEC_H
#define CK_VEC_H

// Bodies written once over 8-float vectors (GCC/Clang vector extensions: one ymm register at the AVX2 level, two
// xmm / NEON registers at the baseline) and instantiated per instruction-set level by CK_VARIANTS, for the
// kernel files whose loops are bound by memory or are short sums (vec.c, winograd.c). Including files turn
// floating-point contraction off, so that every level gives the same bits.

#include "CKernels.h"

#include <string.h>

// The 8-float helpers below are always inlined, never called across an ABI boundary, so the warning that
// passing them by value "changes the ABI" without AVX does not apply.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

#define CK_BODY static inline __attribute__((always_inline))

CK_BODY v8f ld(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
CK_BODY void st(float *p, v8f v) { memcpy(p, &v, sizeof v); }
CK_BODY v8f splat(float a) { return (v8f){a, a, a, a, a, a, a, a}; }
/// a where m is set, else b (m: all-ones / all-zeros lanes).
CK_BODY v8f sel(v8i m, v8f a, v8f b) { return (v8f)(((v8i)a & m) | ((v8i)b & ~m)); }
CK_BODY float hsum(v8f v) {
    float t = 0;
    for (int l = 0; l < 8; l++) t += v[l];
    return t;
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CKV_AVX2 __attribute__((target("avx2,fma,avx")))
#define CKV_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,avx")))
/// Defines `name` with its AVX-512, AVX2 and baseline instantiations of `name##_body` (RET: `return` for a
/// function with a value, nothing for a void one).
#define CK_VARIANTS_(ret, RET, name, params, args)                                                           \
    static CKV_AVX512 ret name##_avx512 params { RET name##_body args; }                                      \
    static CKV_AVX2 ret name##_avx2 params { RET name##_body args; }                                          \
    static ret name##_base params { RET name##_body args; }                                                   \
    ret name params {                                                                                         \
        switch (ck_isa()) {                                                                                   \
        case CK_ISA_AVX512: RET name##_avx512 args; break;                                                    \
        case CK_ISA_AVX2: RET name##_avx2 args; break;                                                        \
        default: RET name##_base args; break;                                                                 \
        }                                                                                                     \
    }
#else
#define CK_VARIANTS_(ret, RET, name, params, args) \
    ret name params { RET name##_body args; }
#endif
#define CK_VARIANTS(ret, name, params, args) CK_VARIANTS_(ret, return, name, params, args)
#define CK_VARIANTS_VOID(name, params, args) CK_VARIANTS_(void, , name, params, args)

/// The first n (0..8) floats at p, zeros after them.
CK_BODY v8f ldn(const float *p, int n) {
    v8f v = splat(0);
    memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}
/// Stores the first n (0..8) lanes of v at p.
CK_BODY void stn(float *p, v8f v, int n) { memcpy(p, &v, (size_t)n * sizeof(float)); }

#endif

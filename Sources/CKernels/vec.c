// The engine's memory-bound loops (batch norm, elementwise maps, reductions, the max-pooling row pass), in C so
// that each one exists in three variants chosen at run time by ck_isa(): the same body compiled for AVX-512,
// for AVX2 + FMA, and for the baseline (x86-64's SSE2; NEON on aarch64). Swift code is compiled for the
// baseline only, so its loops ran 4 floats wide on every CPU.
//
// Each body is written once over 8-float vectors (GCC/Clang vector extensions, which compile to one ymm
// register at the AVX2 level, two xmm / NEON registers at the baseline) and instantiated per level by
// CK_VARIANTS (ck_vec.h). Floating-point contraction is off, so the levels give bit-identical results (these loops
// are limited by memory, not by arithmetic; an FMA would only change the rounding from one CPU to another).
#pragma STDC FP_CONTRACT OFF
#include "ck_vec.h"

// ---------------------------------------------------------------------------------------------------------
// Reductions (four 8-float accumulators: 32 floats per step, then the tail one at a time)

CK_BODY float ck_sum_body(const float *p, long n) {
    v8f a = splat(0), b = a, c = a, d = a;
    long k = 0;
    for (; k + 32 <= n; k += 32) { a += ld(p + k); b += ld(p + k + 8); c += ld(p + k + 16); d += ld(p + k + 24); }
    for (; k + 8 <= n; k += 8) a += ld(p + k);
    float t = hsum((a + b) + (c + d));
    for (; k < n; k++) t += p[k];
    return t;
}
CK_VARIANTS(float, ck_sum, (const float *p, long n), (p, n))

CK_BODY float ck_sum_sqdev_body(const float *p, long n, float mu) {
    const v8f m = splat(mu);
    v8f a = splat(0), b = a, c = a, d = a;
    long k = 0;
    for (; k + 32 <= n; k += 32) {
        const v8f e0 = ld(p + k) - m, e1 = ld(p + k + 8) - m, e2 = ld(p + k + 16) - m, e3 = ld(p + k + 24) - m;
        a += e0 * e0; b += e1 * e1; c += e2 * e2; d += e3 * e3;
    }
    for (; k + 8 <= n; k += 8) { const v8f e = ld(p + k) - m; a += e * e; }
    float t = hsum((a + b) + (c + d));
    for (; k < n; k++) { const float e = p[k] - mu; t += e * e; }
    return t;
}
CK_VARIANTS(float, ck_sum_sqdev, (const float *p, long n, float mu), (p, n, mu))

CK_BODY void ck_sum_dot_body(const float *g, const float *y, const float *p, long n, float mu, float *out) {
    const v8f m = splat(mu), z = splat(0);
    v8f s0 = z, s1 = z, d0 = z, d1 = z;
    long k = 0;
    for (; k + 16 <= n; k += 16) {
        v8f g0 = ld(g + k), g1 = ld(g + k + 8);
        if (y) { g0 = sel(ld(y + k) > z, g0, z); g1 = sel(ld(y + k + 8) > z, g1, z); }
        s0 += g0; s1 += g1;
        d0 += g0 * (ld(p + k) - m); d1 += g1 * (ld(p + k + 8) - m);
    }
    for (; k + 8 <= n; k += 8) {
        v8f g0 = ld(g + k);
        if (y) g0 = sel(ld(y + k) > z, g0, z);
        s0 += g0; d0 += g0 * (ld(p + k) - m);
    }
    float ts = hsum(s0 + s1), td = hsum(d0 + d1);
    for (; k < n; k++) {
        const float gg = !y || y[k] > 0 ? g[k] : 0.0f;
        ts += gg; td += gg * (p[k] - mu);
    }
    out[0] = ts;
    out[1] = td;
}
CK_VARIANTS_VOID(ck_sum_dot, (const float *g, const float *y, const float *p, long n, float mu, float *out),
            (g, y, p, n, mu, out))

// ---------------------------------------------------------------------------------------------------------
// Batch norm planes

CK_BODY void ck_affine_body(const float *x, float *y, long n, float a, float b, int relu) {
    const v8f va = splat(a), vb = splat(b), z = splat(0);
    long k = 0;
    if (relu) {
        for (; k + 8 <= n; k += 8) { const v8f v = ld(x + k) * va + vb; st(y + k, sel(v > z, v, z)); }
        for (; k < n; k++) { const float v = x[k] * a + b; y[k] = v > 0 ? v : 0.0f; }
    } else {
        for (; k + 8 <= n; k += 8) st(y + k, ld(x + k) * va + vb);
        for (; k < n; k++) y[k] = x[k] * a + b;
    }
}
CK_VARIANTS_VOID(ck_affine, (const float *x, float *y, long n, float a, float b, int relu), (x, y, n, a, b, relu))

CK_BODY void ck_bn_grad_body(const float *g, const float *y, const float *p, float *q, long n, float k, float mg,
                             float mu, float s) {
    const v8f vk = splat(k), vmg = splat(mg), vmu = splat(mu), vs = splat(s), z = splat(0);
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        v8f gv = ld(g + j);
        if (y) gv = sel(ld(y + j) > z, gv, z);
        st(q + j, vk * (gv - vmg - (ld(p + j) - vmu) * vs));
    }
    for (; j < n; j++) q[j] = k * ((!y || y[j] > 0 ? g[j] : 0.0f) - mg - (p[j] - mu) * s);
}
CK_VARIANTS_VOID(ck_bn_grad, (const float *g, const float *y, const float *p, float *q, long n, float k, float mg,
                               float mu, float s),
            (g, y, p, q, n, k, mg, mu, s))

CK_BODY void ck_scale_where_positive_body(const float *g, const float *y, float *q, long n, float a) {
    const v8f va = splat(a), z = splat(0);
    long j = 0;
    for (; j + 8 <= n; j += 8) st(q + j, sel(ld(y + j) > z, ld(g + j) * va, z));
    for (; j < n; j++) q[j] = y[j] > 0 ? g[j] * a : 0.0f;
}
CK_VARIANTS_VOID(ck_scale_where_positive, (const float *g, const float *y, float *q, long n, float a),
            (g, y, q, n, a))

// ---------------------------------------------------------------------------------------------------------
// Elementwise maps

CK_BODY v8f op2v(int op, v8f a, v8f b) {
    const v8f z = splat(0);
    switch (op) {
    case CK_OP_ADD: return a + b;
    case CK_OP_SUB: return a - b;
    case CK_OP_MUL: return a * b;
    case CK_OP_ADD_RELU: { const v8f s = a + b; return sel(s > z, s, z); }
    default: return sel(b > z, a, z);  // CK_OP_PASS_WHERE_POSITIVE
    }
}
CK_BODY float op2s(int op, float a, float b) {
    switch (op) {
    case CK_OP_ADD: return a + b;
    case CK_OP_SUB: return a - b;
    case CK_OP_MUL: return a * b;
    case CK_OP_ADD_RELU: { const float s = a + b; return s > 0 ? s : 0.0f; }
    default: return b > 0 ? a : 0.0f;
    }
}
CK_BODY void ck_map2_body(int op, const float *a, const float *b, float *y, long n) {
    long k = 0;
#define CK_MAP2_CASE(OP)                                                                          \
    case OP:                                                                                      \
        for (; k + 8 <= n; k += 8) st(y + k, op2v(OP, ld(a + k), ld(b + k)));                     \
        for (; k < n; k++) y[k] = op2s(OP, a[k], b[k]);                                           \
        break;
    switch (op) {
        CK_MAP2_CASE(CK_OP_ADD)
        CK_MAP2_CASE(CK_OP_SUB)
        CK_MAP2_CASE(CK_OP_MUL)
        CK_MAP2_CASE(CK_OP_ADD_RELU)
        CK_MAP2_CASE(CK_OP_PASS_WHERE_POSITIVE)
    default: break;
    }
#undef CK_MAP2_CASE
}
CK_VARIANTS_VOID(ck_map2, (int op, const float *a, const float *b, float *y, long n), (op, a, b, y, n))

CK_BODY void ck_add_inplace_body(float *d, const float *s, long n) {
    long k = 0;
    for (; k + 8 <= n; k += 8) st(d + k, ld(d + k) + ld(s + k));
    for (; k < n; k++) d[k] += s[k];
}
CK_VARIANTS_VOID(ck_add_inplace, (float *d, const float *s, long n), (d, s, n))

// ---------------------------------------------------------------------------------------------------------
// Pooling

/// m[k] = max(m[k], r[k]) with NaN winning (a NaN in m stays, a NaN in r replaces m).
CK_BODY void ck_max_rows_body(float *m, const float *r, long n) {
    long k = 0;
    for (; k + 8 <= n; k += 8) {
        const v8f a = ld(m + k), b = ld(r + k);
        st(m + k, sel(((b > a) | (b != b)) & (a == a), b, a));
    }
    for (; k < n; k++) {
        const float a = m[k], b = r[k];
        m[k] = (b > a || b != b) && a == a ? b : a;
    }
}
CK_VARIANTS_VOID(ck_max_rows, (float *m, const float *r, long n), (m, r, n))

// 3x3 convolutions with stride 1 and padding 1 by Winograd's minimal filtering F(4x4, 3x3) (Lavin and Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016), in the channels-last layout (NHWC).
//
// The output is cut into 4x4 tiles; each reads a 6x6 input patch d (rows 4ty-1 .. 4ty+4). With the constant
// matrices B (6x6), G (6x3) and A (6x4) below,
//
//   Y(tile) = A^T [ sum_c (G g[o, c] G^T) (.) (B^T d[c] B) ] A
//
// where (.) multiplies elementwise over the 36 points xi of the 6x6 domain. For a block of tiles the sum over
// c is, for every xi, a matrix product  M_xi (tiles x O) = V_xi (tiles x C) U_xi (C x O): 36 products of
// 36 / 16 = 2.25 multiply-adds per output and input channel, instead of the 9 of the direct convolution
// (4x fewer). The products run on the channels-last convolution's micro-kernel (ck_conv_nhwc as a 1x1
// convolution; U is packed once, in its weight layout). The transforms are vector loops over 8 channels,
// written once and compiled per instruction-set level.
//
// Blocking: tiles are processed in chunks sized so that a chunk's V and M (36 x tiles x (C + O) floats) stay
// in a thread's share of L2/L3; chunks go to the threads from a shared counter, each chunk transformed,
// multiplied and transformed back by one thread. When there are fewer chunks than threads, one chunk at a
// time runs with the products split over the threads.
//
// The weight gradient (ck_wino_weight_grad, at the end) runs the same algebra backwards.
//
// Accuracy: the transforms' constants (up to 8 and 1/24) make the rounding error several times that of the
// direct sum (relative error up to ~1e-6 of the terms' magnitudes against ~1e-7).
#define _GNU_SOURCE
#pragma STDC FP_CONTRACT OFF
#include "ck_vec.h"
#include "ck_internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

long ck_wino_packed_size(int O, int C) { return 36 * ck_conv_packed_size(O, C, 1, 1); }

/// G (a, b, c)^T: one column of the weight transform, (a/4, -(a+b+c)/6, -(a-b+c)/6, a/24+b/12+c/6, a/24-b/12+c/6, c).
CK_BODY void gt3(v8f a, v8f b, v8f c, v8f r[6]) {
    const v8f ac = a + c, a24 = a * splat(1.0f / 24), b12 = b * splat(1.0f / 12), c6 = c * splat(1.0f / 6);
    r[0] = a * splat(0.25f);
    r[1] = (ac + b) * splat(-1.0f / 6);
    r[2] = (ac - b) * splat(-1.0f / 6);
    r[3] = (a24 + b12) + c6;
    r[4] = (a24 - b12) + c6;
    r[5] = c;
}

/// The packed panels q0 ..< q1 (16 output channels each) of the transformed weights of w (O, C, 3, 3).
CK_BODY void ck_wino_pack_panels_body(const float *w, const float *scale, int O, int C, int q0, int q1, float *dst) {
    const int panels = (O + 15) / 16;
    const long ps = ck_conv_packed_size(O, C, 1, 1);
    for (int q = q0; q < q1; q++) {
        for (int c = 0; c < C; c++) {
            // Where ck_conv_pack puts (k = c, o) for a 1x1 convolution: blocks of 256 k, 16-column panels.
            const long p0 = (long)c / 256 * 256, kc = C - p0 < 256 ? C - p0 : 256;
            float *d = dst + p0 * panels * 16 + (long)q * kc * 16 + (c - p0) * 16;
            // The panel's 16 kernels of input channel c, tap-major (16 output channels per row, zeros past O).
            float gl[9][16];
            for (int j = 0; j < 16; j++) {
                const int o = q * 16 + j;
                for (int k = 0; k < 9; k++) gl[k][j] = o < O ? w[((long)o * C + c) * 9 + k] : 0.0f;
            }
            // The panel's 16 columns of all 36 matrices first, then one whole line per matrix: the matrices lie
            // ps floats apart, often a multiple of 4 KiB, so narrower stores to them would evict each other.
            float line[36][16];
            for (int h = 0; h < 16; h += 8) {
                const int o = q * 16 + h, on = O - o < 0 ? 0 : O - o < 8 ? O - o : 8;
                v8f g[9], t[3][6], u[6];
                for (int k = 0; k < 9; k++) g[k] = ld(gl[k] + h);
                const v8f s = scale ? ldn(scale + o, on) : splat(1);
                for (int k = 0; k < 3; k++) gt3(g[k], g[3 + k], g[6 + k], t[k]);  // t[k][a] = (G g)[a][k]
                for (int a = 0; a < 6; a++) {
                    gt3(t[0][a], t[1][a], t[2][a], u);  // u[b] = (G g G^T)[a][b]
                    for (int b = 0; b < 6; b++) st(line[a * 6 + b] + h, u[b] * s);
                }
            }
            for (int xi = 0; xi < 36; xi++) memcpy(d + xi * ps, line[xi], sizeof line[xi]);
        }
    }
}
CK_VARIANTS_VOID(ck_wino_pack_panels,
                 (const float *w, const float *scale, int O, int C, int q0, int q1, float *dst),
                 (w, scale, O, C, q0, q1, dst))

typedef struct {
    const float *w, *scale;
    int o, c;
    float *dst;
    _Atomic int next;
} pack_job;

static void pack_task(void *p, int tid) {
    (void)tid;
    pack_job *j = (pack_job *)p;
    const int panels = (j->o + 15) / 16;
    for (;;) {
        const int q = atomic_fetch_add_explicit(&j->next, 4, memory_order_relaxed);
        if (q >= panels) break;
        ck_wino_pack_panels(j->w, j->scale, j->o, j->c, q, q + 4 < panels ? q + 4 : panels, j->dst);
    }
}

void ck_wino_pack(const float *w, const float *scale, int O, int C, float *dst) {
    pack_job j = {w, scale, O, C, dst, 0};
    if (!(O > 64 && (long)O * C >= 8192 && ck_pool_run(pack_task, &j, 2))) pack_task(&j, 0);
}

/// r = B^T d for one column of a 6x6 patch (also d B for one row: B^T's rows are B's columns).
CK_BODY void bt6(const v8f d[6], v8f r[6]) {
    const v8f four = splat(4), five = splat(5), two = splat(2);
    r[0] = (four * d[0] - five * d[2]) + d[4];
    r[1] = (d[3] + d[4]) - four * (d[1] + d[2]);
    r[2] = four * (d[1] - d[2]) + (d[4] - d[3]);
    r[3] = two * (d[3] - d[1]) + (d[4] - d[2]);
    r[4] = two * (d[1] - d[3]) + (d[4] - d[2]);
    r[5] = (four * d[1] - five * d[3]) + d[5];
}

/// o = A^T m for one column of the 6x6 product (4 outputs).
CK_BODY void at6(const v8f m[6], v8f o[4]) {
    const v8f two = splat(2), four = splat(4), eight = splat(8);
    const v8f s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    o[0] = (m[0] + s12) + s34;
    o[1] = d12 + two * d34;
    o[2] = s12 + four * s34;
    o[3] = (d12 + eight * d34) + m[5];
}

/// r = A p for one column of a 4x4 output-gradient tile (6 values; A's rows are A^T's columns).
CK_BODY void a4(const v8f p[4], v8f r[6]) {
    const v8f two = splat(2), four = splat(4), eight = splat(8);
    const v8f s02 = p[0] + four * p[2], d13 = two * p[1] + eight * p[3];
    r[0] = p[0];
    r[1] = (p[0] + p[2]) + (p[1] + p[3]);
    r[2] = (p[0] + p[2]) - (p[1] + p[3]);
    r[3] = s02 + d13;
    r[4] = s02 - d13;
    r[5] = p[3];
}

/// Row a of a 6x6 tile held as 36 matrices ms floats apart: m[b] = the `on` (1..8) floats at
/// M + (6 a + b) ms + off, zeros after them.
CK_BODY void ld_row36(const float *M, long ms, long off, int a, int on, v8f m[6]) {
    for (int b = 0; b < 6; b++) {
        const float *p = M + (a * 6 + b) * ms + off;
        m[b] = on == 8 ? ld(p) : ldn(p, on);
    }
}

/// The tile t's image and top-left output position.
CK_BODY void tile_at(long t, int th, int tw, int *n, int *oy, int *ox) {
    const long per = (long)th * tw;
    *n = (int)(t / per);
    const int r = (int)(t % per);
    *oy = r / tw * 4;
    *ox = r % tw * 4;
}

/// T[xi * ms + tt * C + c] = (K p K^T)[xi] for the tiles t0 ..< t0 + nt of x (N, H, W, C): p is the tile's P x P
/// patch of x starting `off` pixels before its first output (positions outside x read zeros), K the P -> 6 column
/// transform `f` (B^T with P = 6, off = -1 for the input; A with P = 4, off = 0 for the output gradient). ms is the
/// stride of the 36 matrices, at least nt * C.
CK_BODY void to_domain(const float *x, int H, int W, int C, int th, int tw, long t0, int nt, long ms, float *T, int P,
                       int off, void (*f)(const v8f *, v8f *)) {
    for (int tt = 0; tt < nt; tt++) {
        int n, oy, ox;
        tile_at(t0 + tt, th, tw, &n, &oy, &ox);
        const int y0 = oy + off, x0 = ox + off;
        const int inner = y0 >= 0 && x0 >= 0 && y0 + P <= H && x0 + P <= W;
        const float *img = x + (long)n * H * W * C;
        for (int c = 0; c < C; c += 8) {
            const int cn = C - c < 8 ? C - c : 8;
            v8f rows[6][6];
            for (int i = 0; i < P; i++) {
                const int iy = y0 + i;
                v8f d[6];
                for (int j = 0; j < P; j++) {
                    const int ix = x0 + j;
                    if (inner || (iy >= 0 && iy < H && ix >= 0 && ix < W)) {
                        const float *p = img + ((long)iy * W + ix) * C + c;
                        d[j] = cn == 8 ? ld(p) : ldn(p, cn);
                    } else {
                        d[j] = splat(0);
                    }
                }
                f(d, rows[i]);  // rows[i][k] = (p K^T)[i][k]
            }
            for (int k = 0; k < 6; k++) {
                v8f col[6], v[6];
                for (int i = 0; i < P; i++) col[i] = rows[i][k];
                f(col, v);
                for (int a = 0; a < 6; a++) {
                    float *p = T + (a * 6 + k) * ms + (long)tt * C + c;
                    if (cn == 8) st(p, v[a]); else stn(p, v[a], cn);
                }
            }
        }
    }
}

/// V[xi * ms + tt * C + c] = (B^T d B)[xi] for the tiles t0 ..< t0 + nt of x (N, H, W, C), d the 6x6 patch
/// (rows 4ty-1 .. 4ty+4; padding reads zeros).
CK_BODY void ck_wino_input_body(const float *x, int H, int W, int C, int th, int tw, long t0, int nt, long ms,
                                float *V) {
    to_domain(x, H, W, C, th, tw, t0, nt, ms, V, 6, -1, bt6);
}
CK_VARIANTS_VOID(ck_wino_input,
                 (const float *x, int H, int W, int C, int th, int tw, long t0, int nt, long ms, float *V),
                 (x, H, W, C, th, tw, t0, nt, ms, V))

/// y (N, H, W, O) tiles t0 ..< t0 + nt = act(A^T M A + bias + residual), M[xi * ms + tt * O + o].
CK_BODY void from_domain(const float *M, long ms, int H, int W, int O, int th, int tw, long t0, int nt,
                         const float *bias, const float *res, int relu, float *y) {
    const v8f zero = splat(0);
    for (int tt = 0; tt < nt; tt++) {
        int n, oy, ox;
        tile_at(t0 + tt, th, tw, &n, &oy, &ox);
        const int ph = H - oy < 4 ? H - oy : 4, pw = W - ox < 4 ? W - ox : 4;
        for (int o = 0; o < O; o += 8) {
            const int on = O - o < 8 ? O - o : 8;
            v8f s[6][4];
            for (int a = 0; a < 6; a++) {
                v8f m[6];
                ld_row36(M, ms, (long)tt * O + o, a, on, m);
                at6(m, s[a]);
            }
            const v8f bv = bias ? (on == 8 ? ld(bias + o) : ldn(bias + o, on)) : zero;
            for (int q = 0; q < pw; q++) {
                const v8f col[6] = {s[0][q], s[1][q], s[2][q], s[3][q], s[4][q], s[5][q]};
                v8f out[4];
                at6(col, out);
                for (int p = 0; p < ph; p++) {
                    const long at = (((long)n * H + oy + p) * W + ox + q) * O + o;
                    v8f v = out[p] + bv;
                    if (res) v += on == 8 ? ld(res + at) : ldn(res + at, on);
                    if (relu) v = sel(v > zero, v, zero);  // NaN > 0 is false: NaN gives 0
                    if (on == 8) st(y + at, v); else stn(y + at, v, on);
                }
            }
        }
    }
}

/// y (N, H, W, O) tiles t0 ..< t0 + nt = act(A^T M A + bias + residual), M[xi][tt][o] (matrices nt x O).
CK_BODY void ck_wino_output_body(const float *M, int H, int W, int O, int th, int tw, long t0, int nt,
                                 const float *bias, const float *res, int relu, float *y) {
    from_domain(M, (long)nt * O, H, W, O, th, tw, t0, nt, bias, res, relu, y);
}
CK_VARIANTS_VOID(ck_wino_output,
                 (const float *M, int H, int W, int O, int th, int tw, long t0, int nt, const float *bias,
                  const float *res, int relu, float *y),
                 (M, H, W, O, th, tw, t0, nt, bias, res, relu, y))

// One row of tiles through a channels-last patch (the NCHW entry points): the patch holds the rows and columns the
// row's tiles read, zeros where they fall outside the image, so the transforms need no bounds checks.

/// T[xi * ms + tx * C + c] = (K p K^T)[xi] for the tiles tx < tw of a patch P (rows x pw x C, channels-last) whose
/// tile tx reads columns 4 tx .. 4 tx + 5 (the input, grad = 0: B^T over 6 x 6) or 4 tx .. 4 tx + 3 (an output
/// gradient, grad = 1: A over 4 x 4).
CK_BODY void ck_wino_patch_in_body(const float *P, int rows, int pw, int C, int tw, long ms, float *T, int grad) {
    if (grad) to_domain(P, rows, pw, C, 1, tw, 0, tw, ms, T, 4, 0, a4);
    else to_domain(P, rows, pw, C, 1, tw, 0, tw, ms, T, 6, 0, bt6);
}
CK_VARIANTS_VOID(ck_wino_patch_in, (const float *P, int rows, int pw, int C, int tw, long ms, float *T, int grad),
                 (P, rows, pw, C, tw, ms, T, grad))

/// Q (rows x W x O, channels-last) = A^T M A for the tiles tx < tw of one row of tiles, M[xi * ms + tx * O + o].
CK_BODY void ck_wino_patch_out_body(const float *M, long ms, int rows, int W, int O, int tw, float *Q) {
    from_domain(M, ms, rows, W, O, 1, tw, 0, tw, NULL, NULL, 0, Q);
}
CK_VARIANTS_VOID(ck_wino_patch_out, (const float *M, long ms, int rows, int W, int O, int tw, float *Q),
                 (M, ms, rows, W, O, tw, Q))

/// P (rows x pw x C, channels-last) <- rows y0 .. y0 + rows - 1 and columns -left .. pw - left - 1 of image n of
/// x (N, C, H, W); zeros outside the image.
static void nchw_patch(const float *x, int H, int W, int C, int n, int y0, int rows, int left, int pw, float *P) {
    const long hw = (long)H * W;
    const float *img = x + (long)n * C * hw;
    for (int i = 0; i < rows; i++) {
        const int iy = y0 + i;
        float *row = P + (long)i * pw * C;
        if (iy < 0 || iy >= H) {
            memset(row, 0, sizeof(float) * pw * C);
            continue;
        }
        if (left) memset(row, 0, sizeof(float) * left * C);
        ck_transpose(img + (long)iy * W, hw, C, W, row + (long)left * C, C);
        if (pw > W + left) memset(row + (long)(W + left) * C, 0, sizeof(float) * (pw - W - left) * C);
    }
}

typedef struct {
    const float *x;
    int h, w, c, o, th, tw, tb;
    long tiles, ps;
    const float *up, *bias, *res;
    int relu, gemm_threads, nchw;
    float *y;
    _Atomic long next;
    _Atomic int failed;
} wino_job;

static __thread float *w_buf;
static __thread size_t w_cap;

/// A buffer of at least `need` floats kept by the calling thread (grown, never shrunk), or NULL.
static float *thread_buffer(float **buf, size_t *cap, size_t need) {
    if (*cap < need) {
        free(*buf);
        *buf = malloc(need * sizeof(float));
        *cap = *buf ? need : 0;
    }
    return *buf;
}

/// One chunk of tiles: transform, 36 products, transform back. NCHW chunks are whole rows of tiles, each read
/// through a channels-last patch and written back through one. Returns 0 when its workspace cannot be had.
static int wino_chunk(wino_job *j, long t0, int nt) {
    const int C = j->c, O = j->o, W = j->w, tw = j->tw, pw = 4 * tw + 2;
    const size_t vm = (size_t)36 * nt * (C + O);
    const size_t need = vm + (j->nchw ? (size_t)6 * pw * C + (size_t)4 * W * O : 0);
    float *V = thread_buffer(&w_buf, &w_cap, need);
    if (!V) return 0;
    float *M = V + (size_t)36 * nt * C, *P = V + vm, *Q = P + (size_t)6 * pw * C;
    if (j->nchw) {
        for (long r = t0 / tw; r < (t0 + nt) / tw; r++) {
            const int n = (int)(r / j->th), ty = (int)(r % j->th);
            nchw_patch(j->x, j->h, W, C, n, 4 * ty - 1, 6, 1, pw, P);
            ck_wino_patch_in(P, 6, pw, C, tw, (long)nt * C, V + (r * tw - t0) * C, 0);
        }
    } else {
        ck_wino_input(j->x, j->h, W, C, j->th, tw, t0, nt, (long)nt * C, V);
    }
    for (int xi = 0; xi < 36; xi++)
        ck_conv_nhwc(V + (long)xi * nt * C, 1, 1, nt, C, j->up + xi * j->ps, O, 1, 1, 1, 1, 0, 0, NULL, NULL, 0,
                     M + (long)xi * nt * O, j->gemm_threads);
    if (j->nchw) {
        const long hw = (long)j->h * W;
        for (long r = t0 / tw; r < (t0 + nt) / tw; r++) {
            const int n = (int)(r / j->th), oy = (int)(r % j->th) * 4, rows = j->h - oy < 4 ? j->h - oy : 4;
            ck_wino_patch_out(M + (r * tw - t0) * O, (long)nt * O, rows, W, O, tw, Q);
            for (int p = 0; p < rows; p++)
                ck_transpose(Q + (long)p * W * O, O, W, O, j->y + (long)n * O * hw + (long)(oy + p) * W, hw);
        }
    } else {
        ck_wino_output(M, j->h, W, O, j->th, tw, t0, nt, j->bias, j->res, j->relu, j->y);
    }
    return 1;
}

static void wino_task(void *p, int tid) {
    (void)tid;
    wino_job *j = (wino_job *)p;
    for (;;) {
        const long t0 = atomic_fetch_add_explicit(&j->next, j->tb, memory_order_relaxed);
        if (t0 >= j->tiles) break;
        const int nt = (int)(j->tiles - t0 < j->tb ? j->tiles - t0 : j->tb);
        if (!wino_chunk(j, t0, nt)) atomic_store(&j->failed, 1);
    }
}

long ck_wino_tiles(int N, int H, int W) { return (long)N * ((H + 3) / 4) * ((W + 3) / 4); }

static int wino_run(const float *x, int N, int H, int W, int C, const float *up, int O, const float *bias,
                    const float *residual, int relu, float *y, int threads, int nchw) {
    if (N <= 0 || H <= 0 || W <= 0 || O <= 0) return 1;
    const int t = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    wino_job j = {x, H, W, C, O, (H + 3) / 4, (W + 3) / 4, 0, ck_wino_tiles(N, H, W), ck_conv_packed_size(O, C, 1, 1),
                  up, bias, residual, relu, 1, nchw, y, 0, 0};
    // Chunk: with small weights (C x O <= 64 x 64: 36 C x O floats <= 576 KB, re-read from L2 / L3 by every
    // chunk), V and M of about 96 K floats (384 KB) so that the transforms write them and the products read them
    // in L2: 1.2-1.4x faster forward for CIFAR's 32- and 64-channel stages than the larger chunks below, and
    // at least 12 tiles (two of the micro-kernel's 6-row blocks). With larger weights, V and M of about 1.5 M
    // floats (6 MB, a thread's share of L2 + L3), at least 48 tiles so that the packed weights (read once per
    // chunk) serve enough rows. At most 480 tiles and an even share of them; multiples of the micro-kernel's 6
    // rows (channels-last) or of a row of tiles (NCHW).
    long tb = (long)C * O <= 64 * 64 ? 3072L / (C + O) : 1536L * 1024 / (36L * (C + O));
    const long floor = (long)C * O <= 64 * 64 ? 12 : 48;
    if (tb < floor) tb = floor;
    if (tb > 480) tb = 480;
    const long share = (j.tiles + t - 1) / t;
    if (tb > share) tb = share;
    tb = nchw ? (tb + j.tw / 2) / j.tw * j.tw : (tb + 5) / 6 * 6;
    if (tb < j.tw && nchw) tb = j.tw;
    j.tb = (int)tb;
    const long chunks = (j.tiles + tb - 1) / tb;
    if (t > 1 && chunks >= t) {
        if (ck_pool_run(wino_task, &j, t)) return !atomic_load(&j.failed);
    }
    j.gemm_threads = t;
    wino_task(&j, 0);
    return !atomic_load(&j.failed);
}

int ck_wino_nhwc(const float *x, int N, int H, int W, int C, const float *up, int O, const float *bias,
                 const float *residual, int relu, float *y, int threads) {
    return wino_run(x, N, H, W, C, up, O, bias, residual, relu, y, threads, 0);
}

int ck_wino_nchw(const float *x, int N, int H, int W, int C, const float *up, int O, float *y, int threads) {
    return wino_run(x, N, H, W, C, up, O, NULL, NULL, 0, y, threads, 1);
}

// ---------------------------------------------------------------------------------------------------------
// Weight gradient. The forward pass is linear in U = G g G^T, so dU[xi] = sum over tiles of V[xi]^T (A dy A^T)[xi]
// (36 products with the tiles as the reduction), and dg = G^T dU G: 36 C x O products of length `tiles` instead of
// the direct product's 9 of length 16 x `tiles` (the output pixels).

/// D[xi * ms + tt * O + o] = (A dy A^T)[xi] for the tiles t0 ..< t0 + nt of dy (N, H, W, O) (positions past the
/// output are zeros).
CK_BODY void ck_wino_grad_output_body(const float *dy, int H, int W, int O, int th, int tw, long t0, int nt, long ms,
                                      float *D) {
    to_domain(dy, H, W, O, th, tw, t0, nt, ms, D, 4, 0, a4);
}
CK_VARIANTS_VOID(ck_wino_grad_output,
                 (const float *dy, int H, int W, int O, int th, int tw, long t0, int nt, long ms, float *D),
                 (dy, H, W, O, th, tw, t0, nt, ms, D))

/// s = G^T m for one column of the 6x6 gradient (3 values).
CK_BODY void gtt(const v8f m[6], v8f s[3]) {
    const v8f q = splat(0.25f), s6 = splat(1.0f / 6), s12 = splat(1.0f / 12), s24 = splat(1.0f / 24);
    const v8f p12 = m[1] + m[2], d12 = m[2] - m[1], p34 = m[3] + m[4], d34 = m[3] - m[4];
    s[0] = (q * m[0] - s6 * p12) + s24 * p34;
    s[1] = s6 * d12 + s12 * d34;
    s[2] = (s6 * (p34 - p12)) + m[5];
}

/// gw[o][c] (3x3) += G^T dU[.][c][o] G for the input channels c0 ..< c1; dU: 36 matrices C x O, 8 output channels
/// per vector.
CK_BODY void ck_wino_weight_grad_unpack_body(const float *dU, int O, int C, int c0, int c1, float *gw) {
    const long ms = (long)C * O;
    for (int c = c0; c < c1; c++) {
        for (int o = 0; o < O; o += 8) {
            const int on = O - o < 8 ? O - o : 8;
            v8f t[6][3];  // t[a][j] = (dU G)[a][j]
            for (int a = 0; a < 6; a++) {
                v8f m[6];
                ld_row36(dU, ms, (long)c * O + o, a, on, m);
                gtt(m, t[a]);
            }
            float out[9][8];
            for (int j = 0; j < 3; j++) {
                const v8f col[6] = {t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j]};
                v8f s[3];
                gtt(col, s);
                for (int i = 0; i < 3; i++) st(out[i * 3 + j], s[i]);
            }
            for (int l = 0; l < on; l++) {
                float *g = gw + ((long)(o + l) * C + c) * 9;
                for (int k = 0; k < 9; k++) g[k] += out[k][l];
            }
        }
    }
}
CK_VARIANTS_VOID(ck_wino_weight_grad_unpack, (const float *dU, int O, int C, int c0, int c1, float *gw),
                 (dU, O, C, c0, c1, gw))

typedef struct {
    const float *x, *dy;
    int h, w, c, o, th, tw, nchw;
    long t0, nt;  // the chunk's tiles
    float *V, *D, *dU, *gw;
    int parts;
    _Atomic int failed;
} wgrad_job;

static void wgrad_unpack_task(void *p, int tid) {
    wgrad_job *j = (wgrad_job *)p;
    const int a = (int)((long)j->c * tid / j->parts), b = (int)((long)j->c * (tid + 1) / j->parts);
    if (b > a) ck_wino_weight_grad_unpack(j->dU, j->o, j->c, a, b, j->gw);
}

static __thread float *g_buf;
static __thread size_t g_cap;

/// The transforms of the tiles t0 ..< t0 + nt (whole rows of tiles for NCHW) into V[xi * ms * C + tt * C + c] and
/// D[xi * ms * O + tt * O + o] (ms: the tiles of the matrices these rows belong to), on the calling thread; P: a
/// patch buffer of 6 (4 tw + 2) max(C, O) floats (NCHW only).
static void wgrad_transforms(const wgrad_job *j, long t0, long nt, long ms, float *V, float *D, float *P) {
    if (!j->nchw) {
        ck_wino_input(j->x, j->h, j->w, j->c, j->th, j->tw, t0, (int)nt, ms * j->c, V);
        ck_wino_grad_output(j->dy, j->h, j->w, j->o, j->th, j->tw, t0, (int)nt, ms * j->o, D);
        return;
    }
    const int tw = j->tw, pw = 4 * tw + 2;
    for (long r = t0 / tw; r < (t0 + nt) / tw; r++) {
        const int n = (int)(r / j->th), ty = (int)(r % j->th);
        const long tt = r * tw - t0;
        nchw_patch(j->x, j->h, j->w, j->c, n, 4 * ty - 1, 6, 1, pw, P);
        ck_wino_patch_in(P, 6, pw, j->c, tw, ms * j->c, V + tt * j->c, 0);
        nchw_patch(j->dy, j->h, j->w, j->o, n, 4 * ty, 4, 0, 4 * tw, P);
        ck_wino_patch_in(P, 4, 4 * tw, j->o, tw, ms * j->o, D + tt * j->o, 1);
    }
}

static __thread float *l_buf;  // a thread's transforms of its chunks (per-thread scheme) and its patch buffer
static __thread size_t l_cap;

/// One chunk shared by the threads: thread tid's slice of its tiles (whole rows of tiles for NCHW) (stage 0), or of
/// the input channels of the final G^T dU G (stage 1, wgrad_unpack_task).
static void wgrad_transform_task(void *p, int tid) {
    wgrad_job *j = (wgrad_job *)p;
    const long unit = j->nchw ? j->tw : 1, units = j->nt / unit;
    const long a = units * tid / j->parts * unit, b = units * (tid + 1) / j->parts * unit;
    if (b <= a) return;
    float *P = NULL;
    if (j->nchw) {
        P = thread_buffer(&l_buf, &l_cap, (size_t)6 * (4 * j->tw + 2) * (j->c > j->o ? j->c : j->o));
        if (!P) {
            atomic_store(&j->failed, 1);
            return;
        }
    }
    wgrad_transforms(j, j->t0 + a, b - a, j->nt, j->V + a * j->c, j->D + a * j->o, P);
}

/// Per-thread accumulation: thread tid takes the chunks tid * chunks / parts ..< (tid + 1) * chunks / parts (a
/// fixed split, so that the sums, and the weights trained with them, do not depend on timing), transforms each in L2
/// and adds its 36 products into its own dU[tid]; the dU are summed at the end, in thread order.
typedef struct {
    const wgrad_job *base;
    long tiles, tb;
    int parts;
    float *dU[64];
    _Atomic int failed;
} wgrad_local_job;

static void wgrad_local_task(void *p, int tid) {
    wgrad_local_job *lj = (wgrad_local_job *)p;
    const wgrad_job *j = lj->base;
    const int C = j->c, O = j->o, pw = 4 * j->tw + 2;
    const size_t vd = (size_t)36 * lj->tb * (C + O), patch = j->nchw ? (size_t)6 * pw * (C > O ? C : O) : 0;
    float *dU = lj->dU[tid];
    memset(dU, 0, (size_t)36 * C * O * sizeof(float));
    const long chunks = (lj->tiles + lj->tb - 1) / lj->tb;
    const long c0 = chunks * tid / lj->parts, c1 = chunks * (tid + 1) / lj->parts;
    if (c1 <= c0) return;
    float *V = thread_buffer(&l_buf, &l_cap, vd + patch);
    if (!V) {
        atomic_store(&lj->failed, 1);
        return;
    }
    for (long k = c0; k < c1; k++) {
        const long t0 = k * lj->tb, nt = lj->tiles - t0 < lj->tb ? lj->tiles - t0 : lj->tb;
        float *D = V + (size_t)36 * nt * C;
        wgrad_transforms(j, t0, nt, nt, V, D, V + vd);
        for (int xi = 0; xi < 36; xi++)
            ck_sgemm_mt(1, 0, C, O, (int)nt, 1.0f, V + (long)xi * nt * C, C, D + (long)xi * nt * O, O, 1.0f,
                        dU + (long)xi * C * O, O, 1);
    }
}

typedef struct {
    float **dU;
    int parts;
    long count;
} sum_job;

static void sum_task(void *p, int tid) {
    sum_job *s = (sum_job *)p;
    const long a = s->count * tid / s->parts, b = s->count * (tid + 1) / s->parts;
    for (int k = 1; k < s->parts; k++)
        for (long i = a; i < b; i++) s->dU[0][i] += s->dU[k][i];
}

static int wino_weight_grad(const float *x, const float *dy, int N, int H, int W, int C, int O, float *gw,
                            int threads, int nchw) {
    if (N <= 0 || H <= 0 || W <= 0 || C <= 0 || O <= 0) return 1;
    const int t = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    const long tiles = ck_wino_tiles(N, H, W);
    const int tw = (W + 3) / 4;
    const size_t du = (size_t)36 * C * O;
    wgrad_job j = {x, dy, H, W, C, O, (H + 3) / 4, tw, nchw, 0, 0, NULL, NULL, NULL, gw, t, 0};
    // Each thread its own chunks and dU when the extra dU (36 C O floats per thread) take at most 8 M floats in all
    // and there are a few chunks per thread: chunks whose transforms (36 x tiles x (C + O) floats) take about 96 K
    // floats (384 KB, in L2), at least 24 tiles (the products' reduction length). Instead of one shared 8 MB chunk at
    // a time with each of its 36 small products split over the threads (below): with the in-place NCHW reads, the
    // backward pass of CIFAR ResNet's 32- and 64-channel layers (`bench conv`) went from 9.6 / 6.2 ms to 6.3 / 4.1.
    long tl = 98304L / (36L * (C + O));
    if (tl < 24) tl = 24;
    if (nchw) tl = (tl + tw - 1) / tw * tw;
    if (t > 1 && (size_t)(t - 1) * du <= (8u << 20) && tiles >= 2L * t * tl) {
        if (!thread_buffer(&g_buf, &g_cap, t * du)) return 0;
        wgrad_local_job lj = {&j, tiles, tl, t, {0}, 0};
        for (int k = 0; k < t; k++) lj.dU[k] = g_buf + k * du;
        if (!ck_pool_run(wgrad_local_task, &lj, t))
            for (int k = 0; k < t; k++) wgrad_local_task(&lj, k);  // the same split, one after another
        if (atomic_load(&lj.failed)) return 0;
        sum_job sj = {lj.dU, t, (long)du};
        if (!ck_pool_run(sum_task, &sj, t))
            for (int k = 0; k < t; k++) sum_task(&sj, k);
        j.dU = g_buf;
        if (!(C >= 2 * t && ck_pool_run(wgrad_unpack_task, &j, t))) {
            j.parts = 1;
            wgrad_unpack_task(&j, 0);
        }
        return 1;
    }
    // Chunks of tiles whose transforms (36 x tiles x (C + O) floats) stay within 2 M floats (8 MB), at least 96
    // tiles (the products' reduction length); whole rows of tiles for NCHW.
    long tb = (2L << 20) / (36L * (C + O));
    if (tb < 96) tb = 96;
    if (nchw) tb = (tb + tw - 1) / tw * tw;
    if (tb > tiles) tb = tiles;
    if (!thread_buffer(&g_buf, &g_cap, du + (size_t)36 * tb * (C + O))) return 0;
    j.dU = g_buf;
    j.V = g_buf + du;
    for (long t0 = 0; t0 < tiles; t0 += tb) {
        j.t0 = t0;
        j.nt = tiles - t0 < tb ? tiles - t0 : tb;
        j.D = j.V + (size_t)36 * j.nt * C;
        if (!(t > 1 && j.nt >= 2 * t && ck_pool_run(wgrad_transform_task, &j, t))) {
            j.parts = 1;
            wgrad_transform_task(&j, 0);
            j.parts = t;
        }
        if (atomic_load(&j.failed)) return 0;
        // dU[xi] (C x O) (+)= V[xi]^T (C x nt) D[xi] (nt x O)
        for (int xi = 0; xi < 36; xi++)
            ck_sgemm_mt(1, 0, C, O, (int)j.nt, 1.0f, j.V + (long)xi * j.nt * C, C, j.D + (long)xi * j.nt * O, O,
                        t0 == 0 ? 0.0f : 1.0f, j.dU + (long)xi * C * O, O, t);
    }
    if (!(t > 1 && C >= 2 * t && ck_pool_run(wgrad_unpack_task, &j, t))) {
        j.parts = 1;
        wgrad_unpack_task(&j, 0);
    }
    return 1;
}

int ck_wino_weight_grad(const float *x, const float *dy, int N, int H, int W, int C, int O, float *gw, int threads) {
    return wino_weight_grad(x, dy, N, H, W, C, O, gw, threads, 0);
}

int ck_wino_weight_grad_nchw(const float *x, const float *dy, int N, int H, int W, int C, int O, float *gw,
                             int threads) {
    return wino_weight_grad(x, dy, N, H, W, C, O, gw, threads, 1);
}

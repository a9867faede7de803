/* Multi-scale deformable attention on CPU: the body of the float and double kernels.
 *
 * Included twice by ms_deform_attn_cpu.c with SCALAR (float / double), NAME(x) and EXP
 * (its exp) defined. Layouts (all contiguous, row-major):
 *   value       (B, S, M, D)           S = sum_l H_l * W_l, levels concatenated
 *   shapes      (L, 2) int64           (H_l, W_l)
 *   starts      (L,) int64             first position of level l in S
 *   loc         (B, Q, M, L, P, 2)     normalised (x, y); pixel x = loc_x * W_l - 0.5
 *   attn        (B, Q, M, L, P)        attention weights
 *   out         (B, Q, M, D)
 * except that the backward takes value and writes grad_value head-major, (B, M, S, D):
 * it runs head by head, and one head's rows are then contiguous (28 % faster than reading
 * them at a stride of M * D, transposing copies included).
 * Bilinear interpolation with zero padding, i.e. grid_sample(align_corners=False,
 * padding_mode='zeros') at 2 * loc - 1. Each call handles a range of work items so
 * that the caller can split the work between threads: (b, q) pairs for the forward,
 * (b, m) pairs for the backward (each owns a disjoint part of grad_value). The *_omp
 * variants take the number of items and of threads instead and split the range in an
 * OpenMP parallel region.
 */

static inline void NAME(axpy)(SCALAR *restrict y, const SCALAR *restrict x, SCALAR a,
                              int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

static inline SCALAR NAME(dot)(const SCALAR *x, const SCALAR *y, int64_t n) {
    SCALAR s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += x[i] * y[i];
    return s;
}

/* Backward of one corner: adds scale * g to its value gradient and returns <v, g>. */
static inline SCALAR NAME(corner_backward)(const SCALAR *v, SCALAR *restrict gv,
                                           const SCALAR *restrict g, SCALAR scale, int64_t n) {
    NAME(axpy)(gv, g, scale, n);
    return NAME(dot)(v, g, n);
}

/* Pixel position of sampling point idx on an H x W level: the top-left corner (x0, y0)
 * and the fractions (fx, fy). Returns 0 when every corner is padding (also for NaN). */
static int NAME(locate)(const SCALAR *loc, int64_t idx, int64_t H, int64_t W, int64_t *x0,
                        int64_t *y0, SCALAR *fx, SCALAR *fy) {
    const SCALAR x = loc[2 * idx] * W - (SCALAR)0.5;
    const SCALAR y = loc[2 * idx + 1] * H - (SCALAR)0.5;
    if (!(x > -1 && x < W && y > -1 && y < H)) return 0;
    const SCALAR xf = floor(x), yf = floor(y);
    *x0 = (int64_t)xf;
    *y0 = (int64_t)yf;
    *fx = x - xf;
    *fy = y - yf;
    return 1;
}

/* Adds the four weighted corners of one sampling point to acc[0, n). */
static inline void NAME(sample_point)(SCALAR *restrict acc, const SCALAR *restrict vl,
                                      const SCALAR *loc, SCALAR a, int64_t H, int64_t W,
                                      int64_t stride, int64_t n) {
    int64_t x0, y0;
    SCALAR fx, fy;
    if (!NAME(locate)(loc, 0, H, W, &x0, &y0, &fx, &fy)) return;
    const int top = y0 >= 0, bottom = y0 + 1 < H, left = x0 >= 0, right = x0 + 1 < W;
    const SCALAR w00 = top && left ? a * (1 - fx) * (1 - fy) : 0;
    const SCALAR w10 = top && right ? a * fx * (1 - fy) : 0;
    const SCALAR w01 = bottom && left ? a * (1 - fx) * fy : 0;
    const SCALAR w11 = bottom && right ? a * fx * fy : 0;
    /* corners on the padding have weight 0 and are read at a clamped (valid) position */
    const int64_t xa = left ? x0 : 0, xb = right ? x0 + 1 : W - 1;
    const int64_t ya = top ? y0 : 0, yb = bottom ? y0 + 1 : H - 1;
    const SCALAR *restrict v00 = vl + (ya * W + xa) * stride;
    const SCALAR *restrict v10 = vl + (ya * W + xb) * stride;
    const SCALAR *restrict v01 = vl + (yb * W + xa) * stride;
    const SCALAR *restrict v11 = vl + (yb * W + xb) * stride;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i)
        acc[i] += w00 * v00[i] + w10 * v10[i] + w01 * v01[i] + w11 * v11[i];
}

void NAME(msda_forward)(const SCALAR *value, const int64_t *shapes, const int64_t *starts,
                        const SCALAR *loc, const SCALAR *attn, SCALAR *out, int64_t S,
                        int64_t M, int64_t D, int64_t Q, int64_t L, int64_t P, int64_t begin,
                        int64_t end) {
    for (int64_t bq = begin; bq < end; ++bq) {
        const int64_t b = bq / Q;
        const SCALAR *vb = value + b * S * M * D;
        for (int64_t m = 0; m < M; ++m) {
            SCALAR *o = out + (bq * M + m) * D;
            for (int64_t d = 0; d < D; ++d) o[d] = 0;
            for (int64_t l = 0; l < L; ++l) {
                const int64_t H = shapes[2 * l], W = shapes[2 * l + 1];
                const SCALAR *vl = vb + starts[l] * M * D + m * D;
                const int64_t idx = ((bq * M + m) * L + l) * P;
                for (int64_t p = 0; p < P; ++p) {
                    if (D == 32)  /* the usual head width: a fixed-length, unrolled loop */
                        NAME(sample_point)(o, vl, loc + 2 * (idx + p), attn[idx + p], H, W,
                                           M * D, 32);
                    else
                        NAME(sample_point)(o, vl, loc + 2 * (idx + p), attn[idx + p], H, W,
                                           M * D, D);
                }
            }
        }
    }
}

void NAME(msda_forward_omp)(const SCALAR *value, const int64_t *shapes, const int64_t *starts,
                            const SCALAR *loc, const SCALAR *attn, SCALAR *out, int64_t S,
                            int64_t M, int64_t D, int64_t Q, int64_t L, int64_t P,
                            int64_t total, int64_t threads) {
#pragma omp parallel num_threads(threads)
    NAME(msda_forward)(value, shapes, starts, loc, attn, out, S, M, D, Q, L, P, SPLIT_BEGIN,
                       SPLIT_END);
}

/* Inference forward from the projections (no gradients): the sampling locations and
 * the attention weights are formed here, per query and head, instead of in separate
 * passes over (B, Q, M, L, P) tensors.
 *   ref    (B, Q, L, 2)                  reference points, normalised (x, y)
 *   proj   (B, Q, M * L * P * 3)         per query: the offsets in pixels, ordered
 *                                        (head, level, point, xy), then the attention
 *                                        logits, ordered (head, level * point)
 * location = ref + offset / (W_l, H_l); weights = softmax of a head's L * P logits. */
void NAME(msda_forward_proj)(const SCALAR *value, const int64_t *shapes,
                             const int64_t *starts, const SCALAR *ref, const SCALAR *proj,
                             SCALAR *out, int64_t S, int64_t M, int64_t D, int64_t Q,
                             int64_t L, int64_t P, int64_t begin, int64_t end) {
    const int64_t K = L * P;
    SCALAR weight[K];
    for (int64_t bq = begin; bq < end; ++bq) {
        const int64_t b = bq / Q;
        const SCALAR *vb = value + b * S * M * D;
        const SCALAR *offsets = proj + bq * M * K * 3;
        const SCALAR *logits = offsets + M * K * 2;
        const SCALAR *r = ref + bq * L * 2;
        for (int64_t m = 0; m < M; ++m) {
            const SCALAR *lg = logits + m * K;
            SCALAR top = lg[0], sum = 0;
            for (int64_t k = 1; k < K; ++k) top = lg[k] > top ? lg[k] : top;
            for (int64_t k = 0; k < K; ++k) {
                weight[k] = EXP(lg[k] - top);
                sum += weight[k];
            }
            SCALAR *o = out + (bq * M + m) * D;
            for (int64_t d = 0; d < D; ++d) o[d] = 0;
            for (int64_t l = 0; l < L; ++l) {
                const int64_t H = shapes[2 * l], W = shapes[2 * l + 1];
                const SCALAR *vl = vb + starts[l] * M * D + m * D;
                for (int64_t p = 0; p < P; ++p) {
                    const SCALAR *off = offsets + ((m * L + l) * P + p) * 2;
                    const SCALAR loc[2] = {r[2 * l] + off[0] / (SCALAR)W,
                                           r[2 * l + 1] + off[1] / (SCALAR)H};
                    const SCALAR a = weight[l * P + p] / sum;
                    if (D == 32)
                        NAME(sample_point)(o, vl, loc, a, H, W, M * D, 32);
                    else
                        NAME(sample_point)(o, vl, loc, a, H, W, M * D, D);
                }
            }
        }
    }
}

void NAME(msda_forward_proj_omp)(const SCALAR *value, const int64_t *shapes,
                                 const int64_t *starts, const SCALAR *ref, const SCALAR *proj,
                                 SCALAR *out, int64_t S, int64_t M, int64_t D, int64_t Q,
                                 int64_t L, int64_t P, int64_t total, int64_t threads) {
#pragma omp parallel num_threads(threads)
    NAME(msda_forward_proj)(value, shapes, starts, ref, proj, out, S, M, D, Q, L, P,
                            SPLIT_BEGIN, SPLIT_END);
}

/* value and grad_value are (B, M, S, D); grad_value, grad_loc and grad_attn must be
 * zero on entry. */
void NAME(msda_backward)(const SCALAR *value, const int64_t *shapes, const int64_t *starts,
                         const SCALAR *loc, const SCALAR *attn, const SCALAR *grad_out,
                         SCALAR *grad_value, SCALAR *grad_loc, SCALAR *grad_attn, int64_t S,
                         int64_t M, int64_t D, int64_t Q, int64_t L, int64_t P, int64_t begin,
                         int64_t end) {
    for (int64_t bm = begin; bm < end; ++bm) {
        const int64_t b = bm / M, m = bm % M;
        for (int64_t q = 0; q < Q; ++q) {
            const int64_t bq = b * Q + q;
            const SCALAR *g = grad_out + (bq * M + m) * D;
            for (int64_t l = 0; l < L; ++l) {
                const int64_t H = shapes[2 * l], W = shapes[2 * l + 1];
                const int64_t offset = ((b * M + m) * S + starts[l]) * D;  /* (B, M, S, D) */
                const SCALAR *vl = value + offset;
                SCALAR *gvl = grad_value + offset;
                for (int64_t p = 0; p < P; ++p) {
                    const int64_t idx = ((bq * M + m) * L + l) * P + p;
                    int64_t x0, y0;
                    SCALAR fx, fy;
                    if (!NAME(locate)(loc, idx, H, W, &x0, &y0, &fx, &fy)) continue;
                    const SCALAR a = attn[idx];
                    const SCALAR w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy);
                    const SCALAR w01 = (1 - fx) * fy, w11 = fx * fy;
                    /* d_xy: <value at corner (x0 + x, y0 + y), grad_out>, 0 on padding */
                    SCALAR d00 = 0, d10 = 0, d01 = 0, d11 = 0;
                    /* offsets of the corners (x0, y0), (x1, y0), (x0, y1), (x1, y1) */
                    const int64_t c00 = (y0 * W + x0) * D, c10 = c00 + D;
                    const int64_t c01 = c00 + W * D, c11 = c01 + D;
                    const int top = y0 >= 0, bottom = y0 + 1 < H;
                    const int left = x0 >= 0, right = x0 + 1 < W;
                    /* the usual head width 32 as a fixed-length, unrolled loop */
#define CORNERS(n)                                                                      \
    do {                                                                                \
        if (top && left) d00 = NAME(corner_backward)(vl + c00, gvl + c00, g, a * w00, n); \
        if (top && right) d10 = NAME(corner_backward)(vl + c10, gvl + c10, g, a * w10, n); \
        if (bottom && left) d01 = NAME(corner_backward)(vl + c01, gvl + c01, g, a * w01, n); \
        if (bottom && right) d11 = NAME(corner_backward)(vl + c11, gvl + c11, g, a * w11, n); \
    } while (0)
                    if (D == 32)
                        CORNERS(32);
                    else
                        CORNERS(D);
#undef CORNERS
                    grad_attn[idx] = w00 * d00 + w10 * d10 + w01 * d01 + w11 * d11;
                    grad_loc[2 * idx] = a * W * ((1 - fy) * (d10 - d00) + fy * (d11 - d01));
                    grad_loc[2 * idx + 1] = a * H * ((1 - fx) * (d01 - d00) + fx * (d11 - d10));
                }
            }
        }
    }
}

void NAME(msda_backward_omp)(const SCALAR *value, const int64_t *shapes, const int64_t *starts,
                             const SCALAR *loc, const SCALAR *attn, const SCALAR *grad_out,
                             SCALAR *grad_value, SCALAR *grad_loc, SCALAR *grad_attn,
                             int64_t S, int64_t M, int64_t D, int64_t Q, int64_t L, int64_t P,
                             int64_t total, int64_t threads) {
#pragma omp parallel num_threads(threads)
    NAME(msda_backward)(value, shapes, starts, loc, attn, grad_out, grad_value, grad_loc,
                        grad_attn, S, M, D, Q, L, P, SPLIT_BEGIN, SPLIT_END);
}

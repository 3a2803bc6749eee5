/*
 * edgefer's native INT8 engine: runs a full-integer TFLite graph (CONV_2D,
 * DEPTHWISE_CONV_2D, PAD, MEAN, FULLY_CONNECTED) that runtime/backends/native.py
 * has parsed into a list of op_t. Built at first use by native.py with the
 * machine's C compiler (-O3 -march=native).
 *
 * Why it exists: on the x86 CPU the benchmarks run on, LiteRT/XNNPACK and
 * onnxruntime run the 1x1 convolutions at about 60 % of the int8 peak and the
 * depthwise ones at 3 %. Here activations are kept as uint8 (int8 + 128) so that
 * the 1x1 convolutions are one u8 x s8 GEMM with AVX-512 VNNI (VPDPBUSD), and the
 * depthwise convolutions run in fp32 FMA, exact because a 3x3 sum of int8 products
 * stays below 2^24.
 *
 * Requantisation is XNNPACK's: fp32 scale per output channel, round to nearest
 * even, add the zero point, clamp. Without AVX-512 VNNI the same layouts run
 * through plain C loops: correct, not fast.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>
#define EDGEFER_VNNI 1
#else
#define EDGEFER_VNNI 0
#endif

enum { OP_GEMM = 0, OP_DW = 1, OP_PAD = 2, OP_MEAN = 3 };

typedef struct {
  int32_t kind;
  int32_t h, w, c;     /* input per image (NHWC) */
  int32_t oh, ow, oc;  /* output per image */
  int32_t kh, kw, sh, sw, pt, pl, pb, pr;
  int32_t k4;          /* GEMM: reduction length / 4 (padded) */
  int32_t in_zp, out_zp, lo, hi; /* uint8 domain */
  float mean_scale;    /* MEAN: in_scale / (out_scale * h * w) */
  const int8_t *w8;    /* GEMM: packed [oc/32][k4][32][4]; DW: packed [c/16][kh][16][4] */
  const int8_t *taps;  /* DW: weights as [kh*kw][c] */
  const int32_t *bias; /* bias - in_zp * sum(w), padded (GEMM: to 32, DW: to 16) */
  const float *scale;  /* per output channel, padded as the bias */
  const uint8_t *src;
  uint8_t *dst;
  void *scratch;       /* GEMM: im2col rows (NULL: the input is the A matrix); DW: kh + 1 interleaved rows
                          (ow * c * 4 bytes each), then c int32 sums;
                          MEAN: per-channel sums */
} op_t;

int edgefer_native_vnni(void) { return EDGEFER_VNNI; }

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static inline uint8_t requant(int32_t acc, float scale, int zp, int lo, int hi) {
  return (uint8_t)clampi((int)nearbyintf((float)acc * scale) + zp, lo, hi);
}

/* ---------- GEMM: C[m][n] = requant(bias[n] + sum_k A[m][k] * B[n][k]) ---------- */

#if EDGEFER_VNNI
/* acc += u8 x s8, in place. GCC 12 compiles the intrinsic on an array of accumulators into two
 * register copies per instruction, which made the GEMM front-end bound (~77 % of peak); asm
 * pins the accumulator to one register. */
static inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "vm"(s8));
  return acc;
}

/* MR rows x 32 columns; MR is a constant at each call site so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void gemm_tile(
    const int MR, int k4, const uint8_t *a, int lda, const int8_t *b, const int32_t *bias, const float *scale,
    int zp, int lo, int hi, uint8_t *c, int ldc, __mmask16 m0, __mmask16 m1) {
  __m512i acc0[8], acc1[8];
  const __m512i b0 = _mm512_loadu_si512(bias), b1 = _mm512_loadu_si512(bias + 16);
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) { acc0[r] = b0; acc1[r] = b1; }
  for (int k = 0; k < k4; k++, a += 4, b += 128) {
    const __m512i w0 = _mm512_loadu_si512(b), w1 = _mm512_loadu_si512(b + 64);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      int32_t word;
      memcpy(&word, a + (size_t)r * lda, 4);
      const __m512i x = _mm512_set1_epi32(word);
      acc0[r] = dpbusd(acc0[r], x, w0);
      acc1[r] = dpbusd(acc1[r], x, w1);
    }
  }
  const __m512 s0 = _mm512_loadu_ps(scale), s1 = _mm512_loadu_ps(scale + 16);
  const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc0[r]), s0));
    __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc1[r]), s1));
    q0 = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q0, vzp), vlo), vhi);
    q1 = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q1, vzp), vlo), vhi);
    _mm_mask_storeu_epi8(c + (size_t)r * ldc, m0, _mm512_cvtepi32_epi8(q0));
    _mm_mask_storeu_epi8(c + (size_t)r * ldc + 16, m1, _mm512_cvtepi32_epi8(q1));
  }
}

static void gemm(int M, int N, int k4, const uint8_t *a, int lda, const int8_t *packed, const int32_t *bias,
                 const float *scale, int zp, int lo, int hi, uint8_t *c) {
  for (int nb = 0; nb * 32 < N; nb++) {
    const int valid = N - nb * 32;
    const __mmask16 m0 = valid >= 16 ? 0xFFFF : (__mmask16)((1u << valid) - 1);
    const __mmask16 m1 = valid >= 32 ? 0xFFFF : valid <= 16 ? 0 : (__mmask16)((1u << (valid - 16)) - 1);
    const int8_t *b = packed + (size_t)nb * k4 * 128;
    const int32_t *bb = bias + nb * 32;
    const float *ss = scale + nb * 32;
    uint8_t *cc = c + nb * 32;
    int m = 0;
    for (; m + 8 <= M; m += 8)
      gemm_tile(8, k4, a + (size_t)m * lda, lda, b, bb, ss, zp, lo, hi, cc + (size_t)m * N, N, m0, m1);
    const uint8_t *ar = a + (size_t)m * lda;
    uint8_t *cr = cc + (size_t)m * N;
    switch (M - m) {
      case 7: gemm_tile(7, k4, ar, lda, b, bb, ss, zp, lo, hi, cr, N, m0, m1); break;
      case 6: gemm_tile(6, k4, ar, lda, b, bb, ss, zp, lo, hi, cr, N, m0, m1); break;
      case 5: gemm_tile(5, k4, ar, lda, b, bb, ss, zp, lo, hi, cr, N, m0, m1); break;
      case 4: gemm_tile(4, k4, ar, lda, b, bb, ss, zp, lo, hi, cr, N, m0, m1); break;
      case 3: gemm_tile(3, k4, ar, lda, b, bb, ss, zp, lo, hi, cr, N, m0, m1); break;
      case 2: gemm_tile(2, k4, ar, lda, b, bb, ss, zp, lo, hi, cr, N, m0, m1); break;
      case 1: gemm_tile(1, k4, ar, lda, b, bb, ss, zp, lo, hi, cr, N, m0, m1); break;
      default: break;
    }
  }
}
#else
static void gemm(int M, int N, int k4, const uint8_t *a, int lda, const int8_t *packed, const int32_t *bias,
                 const float *scale, int zp, int lo, int hi, uint8_t *c) {
  for (int m = 0; m < M; m++) {
    const uint8_t *ar = a + (size_t)m * lda;
    for (int n = 0; n < N; n++) {
      const int8_t *b = packed + (size_t)(n / 32) * k4 * 128 + (n % 32) * 4;
      int32_t acc = bias[n];
      for (int k = 0; k < k4; k++, b += 128)
        acc += ar[4 * k] * b[0] + ar[4 * k + 1] * b[1] + ar[4 * k + 2] * b[2] + ar[4 * k + 3] * b[3];
      c[(size_t)m * N + n] = requant(acc, scale[n], zp, lo, hi);
    }
  }
}
#endif

/* Copy len bytes; with AVX-512 in 16-byte pieces that may write up to 15 bytes past the end and
 * read up to 15 past the source (callers write in increasing order, and buffers carry slack). */
static inline void copy_run(uint8_t *d, const uint8_t *s, int len) {
#if EDGEFER_VNNI
  for (int i = 0; i < len; i += 16) _mm_storeu_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
#else
  memcpy(d, s, (size_t)len);
#endif
}

/* len bytes of value; like copy_run, may write up to 15 bytes past the end. */
static inline void fill_run(uint8_t *d, uint8_t value, int len) {
#if EDGEFER_VNNI
  const __m128i v = _mm_set1_epi8((char)value);
  for (int i = 0; i < len; i += 16) _mm_storeu_si128((__m128i *)(d + i), v);
#else
  memset(d, value, (size_t)len);
#endif
}

/* Rows of a KxK convolution's patches, each k4*4 bytes; taps outside the image hold the
 * input zero point (a real 0), the padding to a multiple of 4 holds 0 (its weights are 0).
 * The kw taps of one kernel row are contiguous in NHWC: one copy of kw*c bytes when inside.
 * Every write goes in increasing address order, so the overrun of one piece is overwritten by
 * the next; small pieces cost no library call, which is most of the time at 3 channels. */
static void im2col(const op_t *op, int n, uint8_t *rows) {
  const int K = op->kh * op->kw * op->c, lda = op->k4 * 4, run = op->kw * op->c, C = op->c;
  const uint32_t zero = 0;
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < op->oh; oy++)
      for (int ox = 0; ox < op->ow; ox++) {
        uint8_t *row = rows + ((size_t)(b * op->oh + oy) * op->ow + ox) * lda;
        const int x0 = ox * op->sw - op->pl;
        for (int ky = 0; ky < op->kh; ky++) {
          uint8_t *p = row + ky * run;
          const int y = oy * op->sh + ky - op->pt;
          const uint8_t *line = op->src + (size_t)(b * op->h + y) * op->w * C;
          if (y < 0 || y >= op->h) {
            fill_run(p, (uint8_t)op->in_zp, run);
          } else if (x0 >= 0 && x0 + op->kw <= op->w) {
            copy_run(p, line + (size_t)x0 * C, run);
          } else {
            for (int kx = 0; kx < op->kw; kx++) {
              const int x = x0 + kx;
              if (x < 0 || x >= op->w)
                fill_run(p + kx * C, (uint8_t)op->in_zp, C);
              else
                copy_run(p + kx * C, line + (size_t)x * C, C);
            }
          }
        }
        if (lda > K) memcpy(row + K, &zero, 4); /* < 4 bytes of padding; the rest is the next row's */
      }
}

static void run_gemm(const op_t *op, int n) {
  const int M = n * op->oh * op->ow;
  const uint8_t *a = op->src;
  int lda = op->c;
  if (op->scratch) { /* native_plan.py gives scratch exactly to the convolutions that need patches */
    im2col(op, n, (uint8_t *)op->scratch);
    a = (const uint8_t *)op->scratch;
    lda = op->k4 * 4;
  }
  gemm(M, op->oc, op->k4, a, lda, op->w8, op->bias, op->scale, op->out_zp, op->lo, op->hi, op->dst);
}

/* ---------- depthwise: integer, exact ----------
 * sum((x - z) * w) = sum(x * w) - z * sum(w): native_plan.py folds z * sum(w) into the bias, so the
 * engine reads x as stored and a padded tap holds z (a real 0). */

/* Any kernel, any channel count: plain loops, accumulators for one pixel's C channels in scratch. */
static void run_dw_generic(const op_t *op, int n) {
  const int C = op->c;
  int32_t *acc = (int32_t *)((uint8_t *)op->scratch + (size_t)(op->kh + 1) * op->ow * op->c * 4);
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < op->oh; oy++)
      for (int ox = 0; ox < op->ow; ox++) {
        for (int c = 0; c < C; c++) acc[c] = op->bias[c];
        for (int ky = 0; ky < op->kh; ky++)
          for (int kx = 0; kx < op->kw; kx++) {
            const int y = oy * op->sh + ky - op->pt, x = ox * op->sw + kx - op->pl;
            const int8_t *w = op->taps + (size_t)(ky * op->kw + kx) * C;
            if (y < 0 || y >= op->h || x < 0 || x >= op->w) {
              for (int c = 0; c < C; c++) acc[c] += op->in_zp * w[c];
            } else {
              const uint8_t *s = op->src + ((size_t)(b * op->h + y) * op->w + x) * C;
              for (int c = 0; c < C; c++) acc[c] += s[c] * w[c];
            }
          }
        uint8_t *out = op->dst + ((size_t)(b * op->oh + oy) * op->ow + ox) * C;
        for (int c = 0; c < C; c++) out[c] = requant(acc[c], op->scale[c], op->out_zp, op->lo, op->hi);
      }
}

#if EDGEFER_VNNI
/* One kernel row's input for every output column, taps side by side per channel:
 * [ow][c/16][16 channels][4 taps] bytes, so one VPDPBUSD against the packed weights ([16][4])
 * adds that kernel row's products for 16 channels. Taps outside the image read pad (c bytes of
 * the zero point); taps past kw read anything, their weights being 0. */
static void dw_interleave(const op_t *op, const uint8_t *src_row, const uint8_t *pad, __m512i perm, uint8_t *out) {
  const int C = op->c;
  for (int ox = 0; ox < op->ow; ox++, out += (size_t)C * 4) {
    const int x0 = ox * op->sw - op->pl;
    const uint8_t *p[4];
    for (int kx = 0; kx < 4; kx++) {
      const int x = x0 + (kx < op->kw ? kx : 0);
      p[kx] = x >= 0 && x < op->w ? src_row + (size_t)x * C : pad;
    }
    for (int c = 0; c < C; c += 16) {
      __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p[0] + c)));
      v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p[1] + c)), 1);
      v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p[2] + c)), 2);
      v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p[3] + c)), 3);
      _mm512_storeu_si512(out + (size_t)c * 4, _mm512_permutexvar_epi8(perm, v));
    }
  }
}

/* One output row; KH is a constant at the call site for the common 3x3 so the tap loop unrolls. */
static inline __attribute__((always_inline)) void dw_output_row(const op_t *op, const int KH, const uint8_t *const *rows,
                                                                uint8_t *out) {
  const int C = op->c;
  const __m512i vzp = _mm512_set1_epi32(op->out_zp), vlo = _mm512_set1_epi32(op->lo), vhi = _mm512_set1_epi32(op->hi);
  for (int ox = 0; ox < op->ow; ox++) {
    const size_t at = (size_t)ox * C * 4;
    for (int c = 0; c < C; c += 16) {
      const int8_t *w = op->w8 + (size_t)c * KH * 4;
      __m512i acc = _mm512_loadu_si512(op->bias + c);
      for (int ky = 0; ky < KH; ky++)
        acc = dpbusd(acc, _mm512_loadu_si512(rows[ky] + at + (size_t)c * 4), _mm512_loadu_si512(w + ky * 64));
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(op->scale + c)));
      q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, vzp), vlo), vhi);
      _mm_storeu_si128((__m128i *)(out + (size_t)ox * C + c), _mm512_cvtepi32_epi8(q));
    }
  }
}

/* kw <= 4, channels a multiple of 16: a ring of kh interleaved rows, each built once per input
 * row and read by every output row whose kernel covers it; channels innermost, so small images
 * cost no per-block setup. */
static void run_dw_vnni(const op_t *op, int n) {
  const int C = op->c, kh = op->kh;
  const size_t row_bytes = (size_t)op->ow * C * 4;
  uint8_t *ring = (uint8_t *)op->scratch, *pad = ring + (size_t)kh * row_bytes;
  memset(pad, op->in_zp, row_bytes); /* all zero points: interleaved or not, the same bytes */
  /* byte 4c+j of an interleaved 16-channel group = channel c of tap j, tap j being 128-bit lane j */
  int8_t index[64];
  for (int c = 0; c < 16; c++)
    for (int j = 0; j < 4; j++) index[4 * c + j] = (int8_t)(16 * j + c);
  const __m512i perm = _mm512_loadu_si512(index);
  for (int b = 0; b < n; b++) {
    const uint8_t *image = op->src + (size_t)b * op->h * op->w * C;
    int held[16];
    for (int k = 0; k < kh; k++) held[k] = -1;
    for (int oy = 0; oy < op->oh; oy++) {
      const uint8_t *rows[16];
      for (int ky = 0; ky < kh; ky++) {
        const int y = oy * op->sh + ky - op->pt;
        if (y < 0 || y >= op->h) { rows[ky] = pad; continue; }
        uint8_t *slot = ring + (size_t)(y % kh) * row_bytes;
        if (held[y % kh] != y) {
          dw_interleave(op, image + (size_t)y * op->w * C, pad, perm, slot);
          held[y % kh] = y;
        }
        rows[ky] = slot;
      }
      uint8_t *out = op->dst + (size_t)(b * op->oh + oy) * op->ow * C;
      if (kh == 3)
        dw_output_row(op, 3, rows, out);
      else
        dw_output_row(op, kh, rows, out);
    }
  }
}
#endif

static void run_dw(const op_t *op, int n) {
#if EDGEFER_VNNI
  if (op->kw <= 4 && op->c % 16 == 0) {
    run_dw_vnni(op, n);
    return;
  }
#endif
  run_dw_generic(op, n);
}

static void run_pad(const op_t *op, int n) {
  const int C = op->c;
  memset(op->dst, op->out_zp, (size_t)n * op->oh * op->ow * C);
  for (int b = 0; b < n; b++)
    for (int y = 0; y < op->h; y++)
      memcpy(op->dst + ((size_t)(b * op->oh + y + op->pt) * op->ow + op->pl) * C,
             op->src + (size_t)(b * op->h + y) * op->w * C, (size_t)op->w * C);
}

static void run_mean(const op_t *op, int n) {
  const int C = op->c, hw = op->h * op->w;
  int32_t *sum = (int32_t *)op->scratch; /* C sums, accumulated pixel by pixel so C stays the inner loop */
  for (int b = 0; b < n; b++) {
    const uint8_t *src = op->src + (size_t)b * hw * C;
    for (int c = 0; c < C; c++) sum[c] = -hw * op->in_zp;
    for (int i = 0; i < hw; i++)
      for (int c = 0; c < C; c++) sum[c] += src[(size_t)i * C + c];
    int c = 0;
#if EDGEFER_VNNI
    const __m512 sc = _mm512_set1_ps(op->mean_scale);
    const __m512i vzp = _mm512_set1_epi32(op->out_zp), vlo = _mm512_set1_epi32(op->lo), vhi = _mm512_set1_epi32(op->hi);
    for (; c + 16 <= C; c += 16) {
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(sum + c)), sc));
      q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, vzp), vlo), vhi);
      _mm_storeu_si128((__m128i *)(op->dst + (size_t)b * C + c), _mm512_cvtepi32_epi8(q));
    }
#endif
    for (; c < C; c++)
      op->dst[(size_t)b * C + c] = requant(sum[c], op->mean_scale, op->out_zp, op->lo, op->hi);
  }
}

/* Run ops[0..count) on a batch of n images; buffers were sized by the caller for n. */
void edgefer_native_run(const op_t *ops, int count, int n) {
  for (int i = 0; i < count; i++) {
    switch (ops[i].kind) {
      case OP_GEMM: run_gemm(&ops[i], n); break;
      case OP_DW: run_dw(&ops[i], n); break;
      case OP_PAD: run_pad(&ops[i], n); break;
      case OP_MEAN: run_mean(&ops[i], n); break;
      default: break;
    }
  }
}

/* float32 -> uint8 domain: clamp(round(x / scale + zp8), -128, 127) + 128 for the int8 zero point
 * zp8, the same float operations, in the same order, as the LiteRT backend's quantisation. */
void edgefer_native_quantize(const float *x, long count, float scale, int zp8, uint8_t *out) {
  long i = 0;
#if EDGEFER_VNNI
  const __m512 vs = _mm512_set1_ps(scale), vzp = _mm512_set1_ps((float)zp8);
  const __m512i v128 = _mm512_set1_epi32(128), vlo = _mm512_setzero_si512(), vhi = _mm512_set1_epi32(255);
  for (; i + 16 <= count; i += 16) {
    __m512i q = _mm512_cvtps_epi32(_mm512_add_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), vs), vzp));
    q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, v128), vlo), vhi);
    _mm_storeu_si128((__m128i *)(out + i), _mm512_cvtepi32_epi8(q));
  }
#endif
  for (; i < count; i++) out[i] = (uint8_t)clampi((int)nearbyintf(x[i] / scale + (float)zp8) + 128, 0, 255);
}

int edgefer_native_op_size(void) { return (int)sizeof(op_t); }

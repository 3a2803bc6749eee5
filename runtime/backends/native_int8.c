/*
 * edgefer's native INT8 engine: runs a full-integer TFLite graph (CONV_2D,
 * DEPTHWISE_CONV_2D, PAD, MEAN, FULLY_CONNECTED) that runtime/backends/native.py
 * has parsed into a list of op_t. Built at first use by native.py with the
 * machine's C compiler (-O3 -march=native).
 *
 * Why it exists: on the x86 CPU the benchmarks run on, LiteRT/XNNPACK and
 * onnxruntime run the 1x1 convolutions at about 60 % of the int8 peak and the
 * depthwise ones at 3 %. Here activations are kept as uint8 (int8 + 128) so that
 * every convolution is u8 x s8 AVX-512 VNNI (VPDPBUSD): the 1x1 and KxK ones as
 * one GEMM over the batch's pixels that reads its input in place (implicit GEMM),
 * the depthwise ones by interleaving a kernel row's taps per channel so one
 * instruction adds a kernel row for 16 channels. All integer, so exact.
 *
 * Requantisation is XNNPACK's: fp32 scale per output channel, round to nearest
 * even, add the zero point, clamp. Without AVX-512 VNNI the same layouts run
 * through plain C loops: correct, not fast.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
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
  int32_t k4;          /* GEMM: reduction length / 4, padded per kernel row (kh runs of k4/kh words) */
  int32_t npatch;      /* GEMM: runs per image that cross the border (built per call) */
  int32_t in_zp, out_zp, lo, hi; /* uint8 domain */
  float mean_scale;    /* MEAN: in_scale / (out_scale * h * w) */
  const int8_t *w8;    /* GEMM: packed [oc/32][k4][32][4] (native_plan.pack_gemm); DW: [c/16][kh][2][16][4]
                          (native_plan.pack_depthwise) */
  const int8_t *taps;  /* DW: weights as [kh*kw][c] */
  const int32_t *bias; /* bias - in_zp * sum(w), padded (GEMM: to 32, DW: to 16) */
  const float *scale;  /* per output channel, padded as the bias */
  const int32_t *offsets; /* GEMM: [oh*ow][kh] where each kernel row's run starts (native_plan.run_offsets);
                             NULL: 1x1 with the input as the A matrix */
  const int32_t *patches; /* GEMM: [npatch][2] input row and first column of each border run */
  const uint8_t *src;
  uint8_t *dst;
  void *scratch;       /* GEMM: a run of zero points, then the batch's border runs; DW: kh + 1 interleaved rows
                          (ow * c * 4 bytes each), then c int32 sums;
                          MEAN: per-channel sums */
} op_t;

int edgefer_native_vnni(void) { return EDGEFER_VNNI; }

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static inline uint8_t requant(int32_t acc, float scale, int zp, int lo, int hi) {
  return (uint8_t)clampi((int)nearbyintf((float)acc * scale) + zp, lo, hi);
}

/* ---------- weight prefetch ----------
 * The model's weights (3 MB for the shipped one) outgrow a core's L2, so each call streams them
 * from L3, and the first touch of every page waits on it. native.py lays all packed weights out
 * in op order in one block; while one op computes, its kernels pull the next ops' weights into
 * L2 one cache line per step of their inner loops, at most PREFETCH_AHEAD bytes ahead. */
typedef struct {
  const char *at, *end;
} prefetch_t;

#define PREFETCH_AHEAD (512 * 1024)

#if EDGEFER_VNNI /* the plain-C loops do not prefetch */
static inline void prefetch_step(prefetch_t *pf) {
  if (pf->at < pf->end) {
    _mm_prefetch(pf->at, _MM_HINT_T1);
    pf->at += 64;
  }
}
#endif

/* ---------- GEMM: C[m][n] = requant(bias[n] + sum_k A[m][k] * B[n][k]) ----------
 * Row m of A is kh runs of r4*4 bytes, run ky starting at rows[m * kh + ky] (a 1x1 convolution:
 * one run, the pixel's channels; a KxK one: each kernel row's kw*c input bytes, read in place).
 * B is packed [n/32][kh * r4][32][4], zeros past the real reduction length. */

#define GEMM_MR 8 /* rows per tile */

#if EDGEFER_VNNI
/* acc += u8 x s8, in place. GCC 12 compiles the intrinsic on an array of accumulators into two
 * register copies per instruction, which made the GEMM front-end bound (~77 % of peak); asm
 * pins the accumulator to one register. */
static inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "vm"(s8));
  return acc;
}

/* Vector requantisation, 32 or 64 values at a time, the way XNNPACK packs: round acc * scale to
 * int32, pack to int16 with saturation, add the zero point with saturation, pack to uint8 with
 * saturation; the caller clamps to [lo, hi] in bytes. For 0 <= lo <= hi <= 255 that equals
 * clamp(round(acc * scale) + zp, lo, hi), in about two thirds of the 512-bit operations of
 * narrowing each vector of 16 on its own (which was most of a small-K GEMM's time). */
static inline __m512i scaled(__m512i acc, __m512 s) {
  return _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), s));
}

/* a's 16 bytes, then b's. */
static inline __m256i requant32(__m512i a, __m512i b, __m512 sa, __m512 sb, __m512i zp16) {
  const __m512i p = _mm512_adds_epi16(_mm512_packs_epi32(scaled(a, sa), scaled(b, sb)), zp16);
  const __m512i u = _mm512_packus_epi16(p, p); /* 128-bit lane L: a[4L..4L+3], b[4L..4L+3], the same again */
  return _mm512_castsi512_si256(
      _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), u));
}

/* a's 16 bytes, then b's, c's, d's; sa..sd: their scales. */
static inline __m512i requant64(__m512i a, __m512i b, __m512i c, __m512i d, __m512 sa, __m512 sb, __m512 sc,
                                __m512 sd, __m512i zp16) {
  const __m512i ab = _mm512_adds_epi16(_mm512_packs_epi32(scaled(a, sa), scaled(b, sb)), zp16);
  const __m512i cd = _mm512_adds_epi16(_mm512_packs_epi32(scaled(c, sc), scaled(d, sd)), zp16);
  const __m512i u = _mm512_packus_epi16(ab, cd); /* lane L: a[4L..4L+3], b[..], c[..], d[..] */
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), u);
}

/* MR rows x 32 columns; MR is a constant at each call site so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void gemm_tile(
    const int MR, int kh, int r4, const uint8_t *const *rows, const int8_t *b, const int32_t *bias,
    const float *scale, int zp, int lo, int hi, uint8_t *c, int ldc, __mmask32 mask, prefetch_t *pf) {
  __m512i acc0[GEMM_MR], acc1[GEMM_MR];
  const __m512i b0 = _mm512_loadu_si512(bias), b1 = _mm512_loadu_si512(bias + 16);
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) { acc0[r] = b0; acc1[r] = b1; }
  for (int ky = 0; ky < kh; ky++) {
    const uint8_t *a[GEMM_MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) a[r] = rows[r * kh + ky];
    for (int k = 0; k < r4; k++, b += 128) {
      prefetch_step(pf);
      const __m512i w0 = _mm512_loadu_si512(b), w1 = _mm512_loadu_si512(b + 64);
#pragma GCC unroll 8
      for (int r = 0; r < MR; r++) {
        int32_t word;
        memcpy(&word, a[r] + 4 * k, 4);
        const __m512i x = _mm512_set1_epi32(word);
        acc0[r] = dpbusd(acc0[r], x, w0);
        acc1[r] = dpbusd(acc1[r], x, w1);
      }
    }
  }
  const __m512 s0 = _mm512_loadu_ps(scale), s1 = _mm512_loadu_ps(scale + 16);
  const __m512i zp16 = _mm512_set1_epi16((short)zp);
  const __m256i lo8 = _mm256_set1_epi8((char)lo), hi8 = _mm256_set1_epi8((char)hi);
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    const __m256i q = requant32(acc0[r], acc1[r], s0, s1, zp16);
    _mm256_mask_storeu_epi8(c + (size_t)r * ldc, mask, _mm256_min_epu8(_mm256_max_epu8(q, lo8), hi8));
  }
}

/* M rows (one tile: M <= GEMM_MR) x all N columns. */
static void gemm_rows(int M, int N, int kh, int r4, const uint8_t *const *rows, const int8_t *packed,
                      const int32_t *bias, const float *scale, int zp, int lo, int hi, uint8_t *c, prefetch_t *pf) {
  for (int nb = 0; nb * 32 < N; nb++) {
    const int valid = N - nb * 32;
    const __mmask32 mask = valid >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << valid) - 1);
    const int8_t *b = packed + (size_t)nb * kh * r4 * 128;
    const int32_t *bb = bias + nb * 32;
    const float *ss = scale + nb * 32;
    uint8_t *cc = c + nb * 32;
    switch (M) {
      case 8: gemm_tile(8, kh, r4, rows, b, bb, ss, zp, lo, hi, cc, N, mask, pf); break;
      case 7: gemm_tile(7, kh, r4, rows, b, bb, ss, zp, lo, hi, cc, N, mask, pf); break;
      case 6: gemm_tile(6, kh, r4, rows, b, bb, ss, zp, lo, hi, cc, N, mask, pf); break;
      case 5: gemm_tile(5, kh, r4, rows, b, bb, ss, zp, lo, hi, cc, N, mask, pf); break;
      case 4: gemm_tile(4, kh, r4, rows, b, bb, ss, zp, lo, hi, cc, N, mask, pf); break;
      case 3: gemm_tile(3, kh, r4, rows, b, bb, ss, zp, lo, hi, cc, N, mask, pf); break;
      case 2: gemm_tile(2, kh, r4, rows, b, bb, ss, zp, lo, hi, cc, N, mask, pf); break;
      case 1: gemm_tile(1, kh, r4, rows, b, bb, ss, zp, lo, hi, cc, N, mask, pf); break;
      default: break;
    }
  }
}
#else
static void gemm_rows(int M, int N, int kh, int r4, const uint8_t *const *rows, const int8_t *packed,
                      const int32_t *bias, const float *scale, int zp, int lo, int hi, uint8_t *c, prefetch_t *pf) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      const int8_t *b = packed + (size_t)(n / 32) * kh * r4 * 128 + (n % 32) * 4;
      int32_t acc = bias[n];
      for (int ky = 0; ky < kh; ky++) {
        const uint8_t *a = rows[m * kh + ky];
        for (int k = 0; k < r4; k++, b += 128)
          acc += a[4 * k] * b[0] + a[4 * k + 1] * b[1] + a[4 * k + 2] * b[2] + a[4 * k + 3] * b[3];
      }
      c[(size_t)m * N + n] = requant(acc, scale[n], zp, lo, hi);
    }
  (void)pf;
}
#endif

/* n bytes (n <= 16) without a library call: a first convolution's pixel is 3 bytes, and ~70
 * border runs per image made of such calls cost more than their GEMM rows. */
static inline void put_small(uint8_t *d, const uint8_t *s, int n, uint8_t value) {
#if EDGEFER_VNNI
  const __mmask16 m = (__mmask16)((1u << n) - 1);
  _mm_mask_storeu_epi8(d, m, s ? _mm_maskz_loadu_epi8(m, s) : _mm_set1_epi8((char)value));
#else
  if (s)
    memcpy(d, s, (size_t)n);
  else
    memset(d, value, (size_t)n);
#endif
}

/* Patch p of one image: the run at input row patches[2p], columns from patches[2p + 1], taps
 * outside the image set to the zero point (a real 0), the bytes past kw*c to 0. */
static void build_patches(const op_t *op, const uint8_t *image, uint8_t *out, int run_bytes) {
  const int C = op->c, used = op->kw * C;
  for (int p = 0; p < op->npatch; p++, out += run_bytes) {
    const int y = op->patches[2 * p], x0 = op->patches[2 * p + 1];
    for (int kx = 0; kx < op->kw; kx++) {
      const int x = x0 + kx;
      const uint8_t *from = x < 0 || x >= op->w ? NULL : image + ((size_t)y * op->w + x) * C;
      if (C <= 16)
        put_small(out + kx * C, from, C, (uint8_t)op->in_zp);
      else if (from)
        memcpy(out + kx * C, from, (size_t)C);
      else
        memset(out + kx * C, op->in_zp, (size_t)C);
    }
    for (int i = used; i < run_bytes; i++) out[i] = 0; /* fewer than 4 */
  }
}

/* Where count kernel-row runs start, from their offsets (native_plan.run_offsets): in the image,
 * the run of zero points (-1), or this image's patch -2 - o. Eight at a time with AVX-512: done
 * one by one, these lookups were most of a first convolution's instructions. */
static inline void row_pointers(const int32_t *offsets, int count, const uint8_t *image, const uint8_t *zero_run,
                                const uint8_t *patches, int run_bytes, const uint8_t **out) {
#if EDGEFER_VNNI
  /* integers, not pointer arithmetic: patch -2 - o is at patches - 2 * run_bytes - o * run_bytes */
  const __m512i base = _mm512_set1_epi64((long long)(uintptr_t)image);
  const __m512i zero = _mm512_set1_epi64((long long)(uintptr_t)zero_run);
  const __m512i patch0 = _mm512_set1_epi64((long long)((uintptr_t)patches - 2 * (uintptr_t)run_bytes));
  const __m512i bytes = _mm512_set1_epi64(run_bytes), minus1 = _mm512_set1_epi64(-1);
  for (int i = 0; i < count; i += 8) {
    const __mmask8 m = count - i >= 8 ? 0xFF : (__mmask8)((1u << (count - i)) - 1);
    const __m512i o = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, offsets + i));
    __m512i at = _mm512_add_epi64(base, o);
    at = _mm512_mask_mov_epi64(at, _mm512_cmpeq_epi64_mask(o, minus1), zero);
    at = _mm512_mask_sub_epi64(at, _mm512_cmplt_epi64_mask(o, minus1), patch0, _mm512_mul_epi32(o, bytes));
    _mm512_mask_storeu_epi64((void *)(out + i), m, at);
  }
#else
  for (int i = 0; i < count; i++) {
    const int o = offsets[i];
    out[i] = o >= 0 ? image + o : o == -1 ? zero_run : patches + (size_t)(-2 - o) * run_bytes;
  }
#endif
}

/* A convolution or fully connected layer as one GEMM over the batch's pixels, reading its
 * input in place: no im2col copy. */
static void run_gemm(const op_t *op, int n, prefetch_t *pf) {
  const int kh = op->kh, r4 = op->k4 / kh, N = op->oc, pixels = op->oh * op->ow, run_bytes = r4 * 4;
  const size_t image_bytes = (size_t)op->h * op->w * op->c;
  const int M = n * pixels;
  const uint8_t *rows[GEMM_MR * 16];
  if (!op->offsets) { /* 1x1, stride 1, channels a multiple of 4: row m is pixel m's channels */
    for (int m = 0; m < M; m += GEMM_MR) {
      const int mr = M - m < GEMM_MR ? M - m : GEMM_MR;
      for (int r = 0; r < mr; r++) rows[r] = op->src + (size_t)(m + r) * op->c;
      gemm_rows(mr, N, 1, r4, rows, op->w8, op->bias, op->scale, op->out_zp, op->lo, op->hi,
                op->dst + (size_t)m * N, pf);
    }
    return;
  }
  uint8_t *zero_run = (uint8_t *)op->scratch, *patches = zero_run + run_bytes;
  memset(zero_run, op->in_zp, (size_t)run_bytes);
  for (int b = 0; b < n; b++)
    build_patches(op, op->src + b * image_bytes, patches + (size_t)b * op->npatch * run_bytes, run_bytes);
  int b = 0, p = 0; /* image and pixel of the next row */
  for (int m = 0; m < M; m += GEMM_MR) {
    const int mr = M - m < GEMM_MR ? M - m : GEMM_MR;
    for (int r = 0; r < mr;) { /* a tile may span two images */
      const int take = mr - r < pixels - p ? mr - r : pixels - p;
      row_pointers(op->offsets + (size_t)p * kh, take * kh, op->src + b * image_bytes, zero_run,
                   patches + (size_t)b * op->npatch * run_bytes, run_bytes, rows + r * kh);
      r += take;
      p += take;
      if (p == pixels) { p = 0; b++; }
    }
    gemm_rows(mr, N, kh, r4, rows, op->w8, op->bias, op->scale, op->out_zp, op->lo, op->hi,
              op->dst + (size_t)m * N, pf);
  }
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
/* Pair mode (stride 1, kw <= 3): one interleaved entry holds taps x0..x0+3 and serves two output
 * columns, the first through the weights [w0 .. w(kw-1), 0 ..], the second through the same
 * shifted by one tap; half the interleaving work of one entry per column. */
static inline int dw_pairs(const op_t *op) { return op->sw == 1 && op->kw <= 3; }

static inline int dw_entries(const op_t *op) { return dw_pairs(op) ? (op->ow + 1) / 2 : op->ow; }

/* One kernel row's input, entry by entry, taps side by side per channel: [entry][c/16][16
 * channels][4 taps] bytes, so one VPDPBUSD against packed weights ([16][4]) adds that kernel
 * row's products for 16 channels. Entry j's taps are columns j * step - pl + 0..3 (step: 2 in
 * pair mode, else the stride); columns outside the image read pad (c bytes of the zero point);
 * taps a weight variant does not use have weight 0. */
static void dw_interleave(const op_t *op, const uint8_t *src_row, const uint8_t *pad, __m512i perm, uint8_t *out) {
  const int C = op->c, step = dw_pairs(op) ? 2 : op->sw, entries = dw_entries(op);
  for (int j = 0; j < entries; j++, out += (size_t)C * 4) {
    const int x0 = j * step - op->pl;
    const uint8_t *p[4];
    for (int kx = 0; kx < 4; kx++) {
      const int x = x0 + kx;
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

/* 16 channels of one output pixel: the kernel rows' entries at byte `at`, weight variant v. */
static inline __attribute__((always_inline)) __m512i dw_sum(const int KH, const uint8_t *const *rows, size_t at,
                                                              const int8_t *w, int v, const int32_t *bias) {
  __m512i acc = _mm512_loadu_si512(bias);
  for (int ky = 0; ky < KH; ky++)
    acc = dpbusd(acc, _mm512_loadu_si512(rows[ky] + at), _mm512_loadu_si512(w + ky * 128 + v * 64));
  return acc;
}

/* All channels of one output pixel; KH is a constant at the call site for the common 3x3 so the
 * tap loop unrolls. Channels go 64 at a time where they can (one packed requantisation and
 * store), then 32, then 16. */
static inline __attribute__((always_inline)) void dw_pixel(const op_t *op, const int KH, const uint8_t *const *rows,
                                                           size_t at, int v, uint8_t *out) {
  const int C = op->c;
  const __m512i zp16 = _mm512_set1_epi16((short)op->out_zp);
  const __m512i lo8 = _mm512_set1_epi8((char)op->lo), hi8 = _mm512_set1_epi8((char)op->hi);
  int c = 0;
#define DW_SUM(k) dw_sum(KH, rows, at + (size_t)(c + 16 * (k)) * 4, op->w8 + (size_t)(c + 16 * (k)) * KH * 8, v, \
                         op->bias + c + 16 * (k))
  for (; c + 64 <= C; c += 64) {
    const float *sc = op->scale + c;
    const __m512i q = requant64(DW_SUM(0), DW_SUM(1), DW_SUM(2), DW_SUM(3), _mm512_loadu_ps(sc),
                                _mm512_loadu_ps(sc + 16), _mm512_loadu_ps(sc + 32), _mm512_loadu_ps(sc + 48), zp16);
    _mm512_storeu_si512(out + c, _mm512_min_epu8(_mm512_max_epu8(q, lo8), hi8));
  }
  if (c + 32 <= C) {
    const __m256i q = requant32(DW_SUM(0), DW_SUM(1), _mm512_loadu_ps(op->scale + c),
                                _mm512_loadu_ps(op->scale + c + 16), zp16);
    _mm256_storeu_si256((__m256i *)(out + c),
                        _mm256_min_epu8(_mm256_max_epu8(q, _mm512_castsi512_si256(lo8)), _mm512_castsi512_si256(hi8)));
    c += 32;
  }
  if (c < C) {
    __m512i q = _mm512_add_epi32(scaled(DW_SUM(0), _mm512_loadu_ps(op->scale + c)), _mm512_set1_epi32(op->out_zp));
    q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(op->lo)), _mm512_set1_epi32(op->hi));
    _mm_storeu_si128((__m128i *)(out + c), _mm512_cvtepi32_epi8(q));
  }
#undef DW_SUM
}

/* Channels c..c+31 of a whole 3x3 output row. Channel blocks outermost: the block's 12 weight
 * vectors (3 kernel rows x 2 variants x 2 groups of 16), bias and scales stay in registers for
 * the row, and in pair mode both output columns of an entry share its input loads and one
 * packed requantisation. */
static inline __attribute__((always_inline)) void dw_row_block32(const op_t *op, const uint8_t *const *rows, int c,
                                                                 uint8_t *out, prefetch_t *pf) {
  const int C = op->c;
  const size_t entry = (size_t)C * 4;
  const int8_t *wp = op->w8 + (size_t)c * 3 * 8; /* group c/16: [3][2][16][4], then group c/16 + 1 */
  __m512i w[3][2][2];                           /* [ky][variant][group] */
  for (int ky = 0; ky < 3; ky++)
    for (int v = 0; v < 2; v++)
      for (int g = 0; g < 2; g++) w[ky][v][g] = _mm512_loadu_si512(wp + g * 3 * 128 + ky * 128 + v * 64);
  const __m512i b0 = _mm512_loadu_si512(op->bias + c), b1 = _mm512_loadu_si512(op->bias + c + 16);
  const __m512 s0 = _mm512_loadu_ps(op->scale + c), s1 = _mm512_loadu_ps(op->scale + c + 16);
  const __m512i zp16 = _mm512_set1_epi16((short)op->out_zp);
  const __m512i lo8 = _mm512_set1_epi8((char)op->lo), hi8 = _mm512_set1_epi8((char)op->hi);
  const uint8_t *r0 = rows[0] + (size_t)c * 4, *r1 = rows[1] + (size_t)c * 4, *r2 = rows[2] + (size_t)c * 4;
  if (dw_pairs(op)) {
    for (int j = 0; j < dw_entries(op); j++) {
      prefetch_step(pf);
      const size_t at = (size_t)j * entry;
      __m512i a00 = b0, a01 = b1, a10 = b0, a11 = b1; /* [column of the pair][group] */
#define DW_ROW(ky, r)                                                                                  \
  {                                                                                                    \
    const __m512i x0 = _mm512_loadu_si512(r + at), x1 = _mm512_loadu_si512(r + at + 64);               \
    a00 = dpbusd(a00, x0, w[ky][0][0]);                                                                 \
    a01 = dpbusd(a01, x1, w[ky][0][1]);                                                                 \
    a10 = dpbusd(a10, x0, w[ky][1][0]);                                                                 \
    a11 = dpbusd(a11, x1, w[ky][1][1]);                                                                 \
  }
      DW_ROW(0, r0) DW_ROW(1, r1) DW_ROW(2, r2)
#undef DW_ROW
      __m512i q = requant64(a00, a01, a10, a11, s0, s1, s0, s1, zp16);
      q = _mm512_min_epu8(_mm512_max_epu8(q, lo8), hi8);
      uint8_t *o = out + (size_t)(2 * j) * C + c;
      _mm256_storeu_si256((__m256i *)o, _mm512_castsi512_si256(q));
      if (2 * j + 1 < op->ow) _mm256_storeu_si256((__m256i *)(o + C), _mm512_extracti64x4_epi64(q, 1));
    }
  } else {
    const __m256i lo = _mm512_castsi512_si256(lo8), hi = _mm512_castsi512_si256(hi8);
    for (int ox = 0; ox < op->ow; ox++) {
      prefetch_step(pf);
      const size_t at = (size_t)ox * entry;
      __m512i a0 = b0, a1 = b1;
#define DW_ROW(ky, r)                                                                                  \
  a0 = dpbusd(a0, _mm512_loadu_si512(r + at), w[ky][0][0]);                                             \
  a1 = dpbusd(a1, _mm512_loadu_si512(r + at + 64), w[ky][0][1]);
      DW_ROW(0, r0) DW_ROW(1, r1) DW_ROW(2, r2)
#undef DW_ROW
      const __m256i q = requant32(a0, a1, s0, s1, zp16);
      _mm256_storeu_si256((__m256i *)(out + (size_t)ox * C + c), _mm256_min_epu8(_mm256_max_epu8(q, lo), hi));
    }
  }
}

static inline __attribute__((always_inline)) void dw_output_row(const op_t *op, const int KH,
                                                                const uint8_t *const *rows, uint8_t *out,
                                                                prefetch_t *pf) {
  const size_t entry = (size_t)op->c * 4;
  if (dw_pairs(op)) {
    for (int j = 0; j < dw_entries(op); j++) {
      prefetch_step(pf);
      dw_pixel(op, KH, rows, j * entry, 0, out + (size_t)(2 * j) * op->c);
      if (2 * j + 1 < op->ow) dw_pixel(op, KH, rows, j * entry, 1, out + (size_t)(2 * j + 1) * op->c);
    }
  } else {
    for (int ox = 0; ox < op->ow; ox++) {
      prefetch_step(pf);
      dw_pixel(op, KH, rows, ox * entry, 0, out + (size_t)ox * op->c);
    }
  }
}

/* kw <= 4, channels a multiple of 16: a ring of kh interleaved rows, each built once per input
 * row and read by every output row whose kernel covers it; channels innermost, so small images
 * cost no per-block setup. */
static void run_dw_vnni(const op_t *op, int n, prefetch_t *pf) {
  const int C = op->c, kh = op->kh;
  const size_t row_bytes = (size_t)dw_entries(op) * C * 4;
  uint8_t *ring = (uint8_t *)op->scratch, *pad = ring + (size_t)kh * row_bytes;
  memset(pad, op->in_zp, row_bytes > (size_t)C ? row_bytes : (size_t)C); /* all zero points, interleaved or not */
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
      if (kh == 3 && C % 32 == 0)
        for (int c = 0; c < C; c += 32) dw_row_block32(op, rows, c, out, pf);
      else if (kh == 3)
        dw_output_row(op, 3, rows, out, pf);
      else
        dw_output_row(op, kh, rows, out, pf);
    }
  }
}
#endif

static void run_dw(const op_t *op, int n, prefetch_t *pf) {
#if EDGEFER_VNNI
  if (op->kw <= 4 && op->c % 16 == 0) {
    run_dw_vnni(op, n, pf);
    return;
  }
#endif
  (void)pf;
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

/* Bytes of an op's packed weights (the layouts native_plan.py packs). */
static size_t packed_bytes(const op_t *op) {
  if (!op->w8) return 0;
  if (op->kind == OP_GEMM) return (size_t)((op->oc + 31) / 32) * op->k4 * 128;
  if (op->kind == OP_DW) return (size_t)((op->c + 15) / 16) * op->kh * 128;
  return 0;
}

/* Run ops[0..count) on a batch of n images; buffers were sized by the caller for n. weights and
 * weight_bytes: the block holding every op's packed weights in op order (the prefetch stream). */
void edgefer_native_run(const op_t *ops, int count, int n, const void *weights, long weight_bytes) {
  const char *block_end = (const char *)weights + weight_bytes;
  prefetch_t pf = {(const char *)weights, (const char *)weights};
  for (int i = 0; i < count; i++) {
    const op_t *op = &ops[i];
    const size_t bytes = packed_bytes(op);
    if (bytes) {
      const char *mine = (const char *)op->w8, *after = mine + bytes;
      /* compared as integers: only weights inside the block take part in the stream */
      if ((uintptr_t)mine >= (uintptr_t)weights && (uintptr_t)after <= (uintptr_t)block_end) {
        if (pf.at < after) pf.at = after; /* this op reads its own weights now */
        pf.end = after + PREFETCH_AHEAD < block_end ? after + PREFETCH_AHEAD : block_end;
      }
    }
    switch (op->kind) {
      case OP_GEMM: run_gemm(op, n, &pf); break;
      case OP_DW: run_dw(op, n, &pf); break;
      case OP_PAD: run_pad(op, n); break;
      case OP_MEAN: run_mean(op, n); break;
      default: break;
    }
  }
}

/* float32 -> uint8 domain: clamp(round(x / scale + zp8), -128, 127) + 128 for the int8 zero point
 * zp8, the same float operations, in the same order, as the LiteRT backend's quantisation. */
static void quantize_input(const float *x, long count, float scale, int zp8, uint8_t *out) {
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

/* What one inference of a batch of n needs besides its input and its scores; native.py fills it
 * when the batch size changes. */
typedef struct {
  const op_t *ops;
  int32_t count, n;
  const void *weights;
  int64_t weight_bytes;
  int64_t in_count;    /* floats in a batch's input */
  float in_scale;
  int32_t in_zp8;      /* the input's int8 zero point */
  uint8_t *in;         /* the graph's input buffer */
  const uint8_t *out;  /* the graph's output buffer */
  int64_t out_count;   /* output bytes of a batch */
  const float *lut;    /* the score of each output byte: (q - zero point) * scale, made by native.py */
} batch_t;

/* Quantise x, run, and write the scores: one call, so the Python around it stays small (after a
 * run has streamed the weights through L2, every Python step pays cache misses). */
void edgefer_native_infer(const batch_t *b, const float *x, float *scores) {
  quantize_input(x, b->in_count, b->in_scale, b->in_zp8, b->in);
  edgefer_native_run(b->ops, b->count, b->n, b->weights, b->weight_bytes);
  for (int64_t i = 0; i < b->out_count; i++) scores[i] = b->lut[b->out[i]];
}

int edgefer_native_op_size(void) { return (int)sizeof(op_t); }

int edgefer_native_batch_size(void) { return (int)sizeof(batch_t); }

/*
 * int8 peak of one core: the throughput of the widest int8 multiply-accumulate
 * instruction, issued as independent chains so that only the execution ports
 * limit it (not its latency). Prints "<MACs per second> <instruction>".
 *
 * Built by benchmarks/peak.py with one of these defined (and the matching -m flags):
 *   EDGEFER_AVX512_VNNI  VPDPBUSD zmm   64 u8*s8 MACs per instruction
 *   EDGEFER_AVX_VNNI     VPDPBUSD ymm   32
 *   EDGEFER_AVX2         VPMADDUBSW ymm 32 u8*s8 products (summed in pairs)
 *   EDGEFER_DOTPROD      SDOT (NEON)    16
 *   EDGEFER_NEON         SMLAL (NEON)    8
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(EDGEFER_AVX512_VNNI) || defined(EDGEFER_AVX_VNNI) || defined(EDGEFER_AVX2)
#include <immintrin.h>
#endif
#if defined(EDGEFER_DOTPROD) || defined(EDGEFER_NEON)
#include <arm_neon.h>
#endif

#if defined(EDGEFER_AVX512_VNNI)
typedef __m512i acc_t;
#define MACS 64
#define NAME "vpdpbusd zmm"
#define SPLAT(v) _mm512_set1_epi8(v)
#define INIT(i) _mm512_set1_epi32(i)
#define MAC(c, a, b) c = _mm512_dpbusd_epi32(c, a, b)
#define FOLD(c) _mm512_reduce_add_epi32(c)
#elif defined(EDGEFER_AVX_VNNI)
typedef __m256i acc_t;
#define MACS 32
#define NAME "vpdpbusd ymm (avx-vnni)"
#define SPLAT(v) _mm256_set1_epi8(v)
#define INIT(i) _mm256_set1_epi32(i)
#define MAC(c, a, b) c = _mm256_dpbusd_avx_epi32(c, a, b)
#define FOLD(c) _mm256_extract_epi32(c, 0)
#elif defined(EDGEFER_AVX2)
typedef __m256i acc_t;
#define MACS 32
#define NAME "vpmaddubsw ymm"
#define SPLAT(v) _mm256_set1_epi8(v)
#define INIT(i) _mm256_set1_epi16(i)
/* The result feeds the next instruction as its unsigned operand: a chain per accumulator. */
#define MAC(c, a, b) c = _mm256_maddubs_epi16(c, b); (void)a
#define FOLD(c) _mm256_extract_epi32(c, 0)
#elif defined(EDGEFER_DOTPROD)
typedef int32x4_t acc_t;
#define MACS 16
#define NAME "sdot (neon dotprod)"
#define SPLAT(v) vdupq_n_s8(v)
#define INIT(i) vdupq_n_s32(i)
/* In-place asm: the operands never change, and a compiler may otherwise hoist the product out of
 * the loop and time plain adds (clang does for vmlal_s8; the asm keeps one instruction per MAC). */
#define MAC(c, a, b) __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(c) : "w"(a), "w"(b))
#define FOLD(c) vgetq_lane_s32(c, 0)
#elif defined(EDGEFER_NEON)
typedef int16x8_t acc_t;
#define MACS 8
#define NAME "smlal (neon)"
#define SPLAT(v) vdup_n_s8(v)
#define INIT(i) vdupq_n_s16(i)
#define MAC(c, a, b) __asm__("smlal %0.8h, %1.8b, %2.8b" : "+w"(c) : "w"(a), "w"(b))
#define FOLD(c) vgetq_lane_s16(c, 0)
#else
#error "define one of EDGEFER_AVX512_VNNI, EDGEFER_AVX_VNNI, EDGEFER_AVX2, EDGEFER_DOTPROD, EDGEFER_NEON"
#endif

#define CHAINS 12 /* more independent chains than latency x ports on every listed core */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double run(uint64_t loops, int *sink) {
    /* Operands and starting values come through volatiles, so the compiler can neither fold the
     * chains away nor merge them; twelve named accumulators (not an array) keep each in a register. */
    volatile int8_t one = 1, two = 2;
    volatile int start = 0;
    __typeof__(SPLAT(0)) a = SPLAT(one), b = SPLAT(two);
    acc_t c0 = INIT(start), c1 = INIT(start + 1), c2 = INIT(start + 2), c3 = INIT(start + 3),
          c4 = INIT(start + 4), c5 = INIT(start + 5), c6 = INIT(start + 6), c7 = INIT(start + 7),
          c8 = INIT(start + 8), c9 = INIT(start + 9), c10 = INIT(start + 10), c11 = INIT(start + 11);
    double t0 = now();
    for (uint64_t n = 0; n < loops; n++) {
        MAC(c0, a, b); MAC(c1, a, b); MAC(c2, a, b); MAC(c3, a, b); MAC(c4, a, b); MAC(c5, a, b);
        MAC(c6, a, b); MAC(c7, a, b); MAC(c8, a, b); MAC(c9, a, b); MAC(c10, a, b); MAC(c11, a, b);
        MAC(c0, a, b); MAC(c1, a, b); MAC(c2, a, b); MAC(c3, a, b); MAC(c4, a, b); MAC(c5, a, b);
        MAC(c6, a, b); MAC(c7, a, b); MAC(c8, a, b); MAC(c9, a, b); MAC(c10, a, b); MAC(c11, a, b);
    }
    double dt = now() - t0;
    *sink += (int)(FOLD(c0) + FOLD(c1) + FOLD(c2) + FOLD(c3) + FOLD(c4) + FOLD(c5) + FOLD(c6) + FOLD(c7) +
                   FOLD(c8) + FOLD(c9) + FOLD(c10) + FOLD(c11));
    return (double)loops * 2 * CHAINS * MACS / dt; /* two rounds of the chains per loop */
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.2;
    int sink = 0;
    uint64_t loops = 1u << 16;
    /* Grow the loop until one pass lasts long enough to time; that also warms the core up. */
    while (1) {
        double t0 = now();
        run(loops, &sink);
        if (now() - t0 >= seconds || loops > (1ull << 40)) break;
        loops *= 2;
    }
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double rate = run(loops, &sink);
        if (rate > best) best = rate;
    }
    printf("%.6e %s %d\n", best, NAME, sink & 1);
    return 0;
}

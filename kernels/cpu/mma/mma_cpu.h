/* Plumbing the CPU mma kernels share: how a call's work is cut into items for the threads, and
 * the planted-bug hook of the tests. ISA-neutral: plain C.
 *
 * Work items: blocks of NC weight rows (columns of C) times a range of M tiles. Each weight
 * panel is prepared (dequantized, unpacked) once per item and K block and then serves every
 * M tile of the item, so items span all of M unless there are too few N blocks to keep the
 * threads busy: then M is cut into msplit ranges as well (threads over N and M blocks). */
#ifndef KB_MMA_CPU_H
#define KB_MMA_CPU_H

#include <stdint.h>

#include "kbench.h"
#include "mma_common.h"

/* Test-only: a kernel run with a planted tile-edge bug (tests/mma/test_mma_planted.c). */
typedef enum {
    KB_MMA_PLANT_NONE,
    KB_MMA_PLANT_SKIP_N,  /* the last partial tile of N is neither computed nor written */
    KB_MMA_PLANT_SKIP_M,  /* the last partial tile of M is neither computed nor written */
    KB_MMA_PLANT_SHIFT_N, /* the last partial tile of N gets its columns one place off */
} kb_mma_plant;

typedef struct kb_mma_items {
    int64_t nnc;    /* N blocks */
    int64_t nmt;    /* M tiles */
    int64_t msplit; /* M ranges per N block */
    int64_t count;  /* nnc * msplit */
} kb_mma_items;

static inline void kb_mma_items_plan(int64_t N, int64_t nc, int64_t nmt, int nthreads,
                                     kb_mma_items *it)
{
    it->nnc = (N + nc - 1) / nc;
    it->nmt = nmt;
    /* at least two items per thread, so that an uneven last block evens out */
    int64_t want = 2 * (int64_t)nthreads;
    it->msplit = it->nnc >= want ? 1 : (want + it->nnc - 1) / it->nnc;
    if (it->msplit > nmt)
        it->msplit = nmt;
    it->count = it->nnc * it->msplit;
}

/* Item i: N block *ncb, M tiles [*mt_lo, *mt_hi). */
static inline void kb_mma_item(const kb_mma_items *it, int64_t i, int64_t *ncb, int64_t *mt_lo,
                               int64_t *mt_hi)
{
    *ncb = i / it->msplit;
    kb_split(it->nmt, 1, (int)(i % it->msplit), (int)it->msplit, mt_lo, mt_hi);
}

/* Implementations with int8 activations (A quantized per token and 32-block: AVX512-VNNI, AMX).
 * The error falls as 1/sqrt(K): measured up to 9.9e-3 at K = 32, 7e-4 at K = 4096 with random
 * and extreme inputs. An outlier channel (--inputs outliers) coarsens its whole block: 0.58 at
 * K = 32, 0.045 at K = 544, 9e-3 at K = 4096, so such rows fail below K ~ 4096: the known
 * weakness of per-block int8 activations, reported as it is. */
#define KB_MMA_I8_TOL 2e-2
/* With --inputs outliers: the measured 0.58 at K = 32 bounds it (as matvec's int8 paths, whose
 * outlier tolerance is 0.5); the random and extreme inputs keep the 2e-2 check. */
#define KB_MMA_I8_TOL_OUTLIERS 0.6
#define KB_MMA_I8_WHY "A quantized to int8 per token and 32-block (measured; outlier channels " \
                      "exceed it below K ~ 4096)"

/* The AVX-512 FMA path (mma_avx512.c), with a planted bug when plant is not NONE. */
void kb_mma_avx512_gemm(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool,
                        kb_mma_plant plant);

/* The AVX512-VNNI int8 path (mma_avx512vnni.c), q8_0, q4_0 and a4. */
void kb_mma_avx512vnni_gemm(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool,
                            kb_mma_plant plant);

/* The AVX512-BF16 path (mma_avx512bf16.c), bf16 and f16. */
void kb_mma_avx512bf16_gemm(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool,
                            kb_mma_plant plant);

#endif

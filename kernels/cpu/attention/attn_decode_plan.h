/* How the CPU decode kernels share out their work (plain C; the cells come from
 * attn_decode_cell.h with each ISA's vector steps).
 *
 * The cache is cut into chunks of positions (flash decoding) and the kv heads; a cell is one
 * chunk x a range of kv heads, with all the q heads of those kv heads (each K/V row is read
 * from memory once per GQA group). Each cell leaves a partial record (m, l, o) per q head and
 * chunk; a second pass merges the chunks of each head.
 *
 * Long caches (at least 2 chunks per thread): every thread owns up to KB_DEC_CPT consecutive
 * chunks of all kv heads and streams them in order (positions are the outer dimension of
 * [pos][kv_head][D], so that is one contiguous slice of the cache); a thread done with its own
 * takes the last unclaimed chunk of the thread with the most left. The two cores of the shared
 * development machine often run at different speeds, and static halves left the faster one
 * idle: this gained 4-8 points of the read bandwidth at 2 threads and T = 8192.
 * Short caches: cells numbered chunk-major, one contiguous range per thread (kv heads split
 * when there are fewer chunks than threads). */
#ifndef KB_ATTN_DECODE_PLAN_H
#define KB_ATTN_DECODE_PLAN_H

#include <stdatomic.h>

#include "attn_common.h"
#include "attn_softmax.h"
#include "simd_x86.h"

/* A chunk has at least this many positions: below it the partial records and the merge
 * (heads x D per chunk) cost more than the split gains. */
#define KB_DEC_MIN_CHUNK 512
/* Positions per online-softmax step. V rows are consumed 8 at a time: rows kv_heads * D apart
 * (2 or 4 KiB) share L1 sets, and 8 of them per set is what L1's 8 ways hold. */
#define KB_DEC_TILE 16
/* Chunks per thread to start with, when the cache is long enough (8 beat 4 and 2 at T = 8192);
 * with more threads than KB_DEC_STEAL_MAX, the static split. */
#define KB_DEC_CPT 8
#define KB_DEC_STEAL_MAX 64

typedef struct kb_dec_job kb_dec_job;
/* Positions [j0, j1) of kv heads [kv0, kv1) into the records of chunk c. */
typedef void (*kb_dec_cell_fn)(const kb_dec_job *J, int64_t c, int64_t j0, int64_t j1,
                               int64_t kv0, int64_t kv1);

struct kb_dec_job {
    kb_attn_shape s;
    const float *q;    /* [H][D], pre-scaled by log2(e) / sqrt(D): scores in log2 units */
    const void *k, *v; /* caches [T][kv_heads][D] */
    float *part;       /* partial records [nchunk][H][rec] */
    float *out;        /* O [H][D] */
    int64_t nchunk, rec;
    kb_dec_cell_fn cell;
    int steal;                                /* chunks claimed from slots, else static */
    _Atomic uint64_t slots[KB_DEC_STEAL_MAX]; /* per thread: next chunk << 32 | end chunk */
};

/* Claims a chunk of thread t's slot, its first (the owner) or its last (another thread);
 * -1 when none is left. */
static inline int64_t kb_dec_claim(kb_dec_job *J, int t, int last)
{
    uint64_t w = atomic_load_explicit(&J->slots[t], memory_order_relaxed);
    for (;;) {
        const uint64_t f = w >> 32, e = w & 0xFFFFFFFFu;
        if (f >= e)
            return -1;
        const uint64_t nw = last ? (f << 32) | (e - 1) : ((f + 1) << 32) | e;
        if (atomic_compare_exchange_weak_explicit(&J->slots[t], &w, nw, memory_order_relaxed,
                                                  memory_order_relaxed))
            return (int64_t)(last ? e - 1 : f);
    }
}

static inline void kb_dec_chunk(const kb_dec_job *J, int64_t c)
{
    int64_t j0, j1;
    kb_split(J->s.T, KB_DEC_TILE, (int)c, (int)J->nchunk, &j0, &j1);
    J->cell(J, c, j0, j1, 0, J->s.kv_heads);
}

/* Own chunks first, in order, then the last of whoever has the most left. */
static inline void kb_dec_task_steal(kb_dec_job *J, int tid, int nthreads)
{
    for (int64_t c; (c = kb_dec_claim(J, tid, 0)) >= 0;)
        kb_dec_chunk(J, c);
    for (;;) {
        int v = -1;
        uint64_t most = 0;
        for (int t = 0; t < nthreads; t++) {
            const uint64_t w = atomic_load_explicit(&J->slots[t], memory_order_relaxed);
            const uint64_t f = w >> 32, e = w & 0xFFFFFFFFu;
            if (e > f && e - f > most) {
                most = e - f;
                v = t;
            }
        }
        if (v < 0)
            return;
        const int64_t c = kb_dec_claim(J, v, 1);
        if (c >= 0)
            kb_dec_chunk(J, c);
    }
}

static inline void kb_dec_task(void *arg, int tid, int nthreads)
{
    kb_dec_job *J = arg;
    if (J->steal) {
        kb_dec_task_steal(J, tid, nthreads);
        return;
    }
    const int64_t hkv = J->s.kv_heads;
    int64_t lo, hi;
    kb_split(J->nchunk * hkv, 1, tid, nthreads, &lo, &hi);
    for (int64_t it = lo; it < hi;) {
        const int64_t c = it / hkv, kv0 = it % hkv;
        const int64_t kv1 = kv0 + (hi - it) < hkv ? kv0 + (hi - it) : hkv;
        int64_t j0, j1;
        kb_split(J->s.T, KB_DEC_TILE, (int)c, (int)J->nchunk, &j0, &j1);
        J->cell(J, c, j0, j1, kv0, kv1);
        it += kv1 - kv0;
    }
}

static inline void kb_dec_merge_task(void *arg, int tid, int nthreads)
{
    const kb_dec_job *J = arg;
    const int64_t H = J->s.heads, D = J->s.D;
    int64_t lo, hi;
    kb_split(H, 1, tid, nthreads, &lo, &hi);
    for (int64_t h = lo; h < hi; h++)
        kb_sm_merge(J->part + h * J->rec, J->nchunk, H * J->rec, D, J->out + h * D);
}

/* The cell variant for a GQA group of G heads: blocks of 4, 2 or 1 heads. */
static inline int kb_dec_group_block(int64_t G) { return G % 4 == 0 ? 4 : G % 2 == 0 ? 2 : 1; }

/* Plans the split, scales Q, runs the cells and the merge. cells[gb][f16][d] for gb = 1, 2, 4
 * and D = 64, 128, 256 (d = 0, 1, 2): D is a constant in each cell (attn_decode_cell.h). */
static inline void kb_dec_run(const kb_case *c, const kb_tensor *in, kb_tensor *out,
                              kb_pool *pool, kb_dec_cell_fn const cells[5][2][3])
{
    kb_dec_job J;
    kb_attn_decode_shape(c->p, &J.s);
    const int64_t H = J.s.heads, D = J.s.D, n = kb_pool_size(pool);
    const int64_t nchunk = J.s.T / KB_DEC_MIN_CHUNK;
    J.steal = n > 1 && n <= KB_DEC_STEAL_MAX && nchunk >= 2 * n;
    if (J.steal) {
        const int64_t cpt = nchunk / n < KB_DEC_CPT ? nchunk / n : KB_DEC_CPT;
        J.nchunk = cpt * n;
        for (int t = 0; t < n; t++)
            atomic_init(&J.slots[t], (uint64_t)(t * cpt) << 32 | (uint64_t)((t + 1) * cpt));
    } else
        J.nchunk = nchunk < 1 ? 1 : nchunk > n ? n : nchunk;
    J.rec = KB_SM_HDR + D;
    float *buf = kb_scratch((size_t)(H * D + J.nchunk * H * J.rec) * sizeof(float));
    const float *q = in[AT_Q].data;
    const float qs = (float)(1.4426950408889634 / sqrt((double)D));
    for (int64_t i = 0; i < H * D; i++)
        buf[i] = q[i] * qs;
    J.q = buf;
    J.part = buf + H * D;
    J.k = in[AT_K].data;
    J.v = in[AT_V].data;
    J.out = out[AT_O].data;
    const int di = D == 64 ? 0 : D == 128 ? 1 : 2; /* kb_attn_validate allows no other */
    J.cell = cells[kb_dec_group_block(H / J.s.kv_heads)][J.s.kv_f16][di];
    kb_pool_run(pool, kb_dec_task, &J);
    kb_pool_run(pool, kb_dec_merge_task, &J);
}

#endif

/* How the CPU prefill kernels share out their work (plain C; the ISA files bring the items).
 *
 * The rows of one kv head are its (query, q head) pairs, query-major: row r is query r / G,
 * head r % G of the group, so a block of KB_PRE_ROWS rows shares every K/V tile it reads
 * (G heads x several queries). An item is one kv head x one row block. Causality makes late
 * blocks longer (query i reads p0 + i + 1 positions), so threads take items from a shared
 * counter, longest first, rather than in fixed shares. Each item writes its own output rows. */
#ifndef KB_ATTN_PREFILL_PLAN_H
#define KB_ATTN_PREFILL_PLAN_H

#include <stdatomic.h>

#include "attn_common.h"
#include "attn_softmax.h"
#include "simd_x86.h"

#define KB_PRE_ROWS 24 /* rows per block: 4 micro-tiles of 6 */
#define KB_PRE_TILE 32 /* positions per K/V tile (and online-softmax step) */

typedef struct kb_pre_job kb_pre_job;
/* Row block rb of kv head kvh, with a per-thread workspace of kb_pre_ws_floats() floats. */
typedef void (*kb_pre_item_fn)(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb);

struct kb_pre_job {
    kb_attn_shape s;
    const float *q; /* Q [n_q][H][D] */
    const void *k, *v;
    float *out;
    float *ws; /* per-thread workspaces, ws_floats apart */
    int64_t ws_floats, nrb;
    float qscale; /* log2(e) / sqrt(D): scores in log2 units */
    atomic_llong next;
    kb_pre_item_fn item;
};

/* Workspace of one thread (floats, each part a multiple of 16 so all stay 64-byte aligned):
 * packed Q and the output accumulators [ROWS][D], scores/weights [ROWS][TILE], the K tile
 * transposed [D][TILE], the V tile [TILE][D], running max and sum [ROWS] each. */
static inline int64_t kb_pre_ws_floats(int64_t D)
{
    return 2 * KB_PRE_ROWS * D + KB_PRE_ROWS * KB_PRE_TILE + 2 * D * KB_PRE_TILE + 2 * 32;
}

static inline void kb_pre_task(void *arg, int tid, int nthreads)
{
    (void)nthreads;
    kb_pre_job *J = arg;
    const int64_t hkv = J->s.kv_heads, n = hkv * J->nrb;
    float *ws = J->ws + tid * J->ws_floats;
    for (;;) {
        const int64_t it = atomic_fetch_add_explicit(&J->next, 1, memory_order_relaxed);
        if (it >= n)
            break;
        J->item(J, ws, it % hkv, J->nrb - 1 - it / hkv); /* last (longest) row blocks first */
    }
}

/* Runs the items (items[kv_f16]) on the pool. */
static inline void kb_pre_run(const kb_case *c, const kb_tensor *in, kb_tensor *out,
                              kb_pool *pool, kb_pre_item_fn const items[2])
{
    kb_pre_job J;
    kb_attn_prefill_shape(c->p, &J.s);
    const int64_t G = J.s.heads / J.s.kv_heads, n = kb_pool_size(pool);
    J.nrb = (J.s.n_q * G + KB_PRE_ROWS - 1) / KB_PRE_ROWS;
    J.ws_floats = kb_pre_ws_floats(J.s.D);
    J.ws = kb_scratch((size_t)(n * J.ws_floats) * sizeof(float));
    J.q = in[AT_Q].data;
    J.k = in[AT_K].data;
    J.v = in[AT_V].data;
    J.out = out[AT_O].data;
    J.qscale = (float)(1.4426950408889634 / sqrt((double)J.s.D));
    atomic_init(&J.next, 0);
    J.item = items[J.s.kv_f16];
    kb_pool_run(pool, kb_pre_task, &J);
}

#endif

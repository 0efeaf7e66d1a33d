/* Plumbing every CPU kernel of the MLX-style matvec families (matvec_a8/a4/a2/bf16) shares: the
 * job a cpu_run hands its threads, the split of (matrix, row) pairs over threads, and the
 * preparation of x done once per call (inside the timed run, as a real decode step would).
 * ISA-neutral: plain C. */
#ifndef KB_MVA_CPU_H
#define KB_MVA_CPU_H

#include <stdint.h>
#include <string.h>

#include "kbench.h"
#include "matvec_affine_common.h"

typedef struct kb_mva_job {
    kb_mva s;
    const uint8_t *w;        /* codes (or bf16) of all E stored matrices, row_bytes per row */
    const uint16_t *sc, *bi; /* [E][rows][ngroups] bf16 (affine) */
    const int32_t *idx;      /* [k]; NULL without experts */
    const float *x;          /* [kx][tokens][cols], kx = 1 when shared_x, else k */
    float *y;                /* [k][tokens][rows] */
    const void *aux;         /* the kernel's preparation of x */
} kb_mva_job;

static inline void kb_mva_job_init(kb_mva_job *j, const kb_case *c, int bits, const kb_tensor *in,
                                   kb_tensor *out)
{
    memset(j, 0, sizeof *j);
    kb_mva_get(c->p, bits, &j->s);
    const int bf = bits == MVA_BF16_BITS;
    j->w = in[bf ? BF_W : AF_W].data;
    j->sc = bf ? NULL : in[AF_S].data;
    j->bi = bf ? NULL : in[AF_B].data;
    j->idx = j->s.experts ? in[bf ? BF_IDX : AF_IDX].data : NULL;
    j->x = in[bf ? BF_X : AF_X].data;
    j->y = out[MVA_Y].data;
}

/* Stored matrix of computed matrix k; row r of it. */
static inline int64_t kb_mva_row(const kb_mva_job *j, int64_t k, int64_t r)
{
    return (j->idx ? (int64_t)j->idx[k] : 0) * j->s.rows + r;
}

/* Input vector number (x and its preparation) of matrix k, token t. */
static inline int64_t kb_mva_xvec(const kb_mva_job *j, int64_t k, int64_t t)
{
    return (j->s.shared_x ? 0 : k) * j->s.tokens + t;
}

static inline int64_t kb_mva_nxvec(const kb_mva *s) { return (s->shared_x ? 1 : s->k) * s->tokens; }

/* Rows r0..r1-1 of computed matrix k. */
typedef void (*kb_mva_rows_fn)(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1);

/* Thread tid's share of the k * rows (matrix, row) pairs, evenly split, matrix by matrix: with
 * experts, each thread streams whole runs of rows of a few matrices. */
static inline void kb_mva_share(const kb_mva_job *j, int tid, int nthreads, kb_mva_rows_fn fn)
{
    const int64_t rows = j->s.rows;
    int64_t lo, hi;
    kb_split(j->s.k * rows, 1, tid, nthreads, &lo, &hi);
    while (lo < hi) {
        const int64_t k = lo / rows, r0 = lo % rows;
        const int64_t r1 = r0 + (hi - lo) < rows ? r0 + (hi - lo) : rows;
        fn(j, k, r0, r1);
        lo += r1 - r0;
    }
}

/* ---- preparation of x for the f32-activation affine kernels --------------------------------
 * A code byte B holds n = 8/b codes c_0..c_{n-1} (lowest bits first), B = sum_m c_m 2^(b m).
 * With the masked bytes B_m = B & (2^(b(m+1)) - 1) (B_{n-1} = B) and
 *   xt_m = x_m 2^(-b m) - x_{m+1} 2^(-b(m+1))   (m < n-1),   xt_{n-1} = x_{n-1} 2^(-b(n-1)),
 * sum_m c_m x_m = sum_m B_m xt_m (the sum telescopes). A kernel converts the n masked bytes
 * instead of n extracted codes: one mask less per byte, no shifts. xt is stored per L code bytes
 * (L = the kernel's lanes, 8 or 16; L n codes): xt[m][0..L-1] for byte i = 0..L-1, m = 0..n-1, so
 * a kernel reads it in code order; a row's last bytes when fewer than L (8 of them: cols is a
 * multiple of 32) use L = 8. For b = 8 this is x itself. Also the group sums of x, sx[g] (for the
 * biases: sum_j b x_j = b sx), zero-padded to a multiple of 16 groups. */
static inline int64_t kb_mva_sx_stride(const kb_mva *s) { return (s->ngroups + 15) & ~(int64_t)15; }

static inline size_t kb_mva_prep_floats(const kb_mva *s)
{
    return (size_t)(kb_mva_nxvec(s) * (s->cols + kb_mva_sx_stride(s)));
}

#endif

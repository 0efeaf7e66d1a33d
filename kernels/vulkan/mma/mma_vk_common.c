/* Host plumbing of the Vulkan mma implementations (mma_vk.h). */
#include "mma_vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

void kb_mma_vk_release(void *state)
{
    kb_mma_vk *st = state;
    if (!st)
        return;
    kb_vk_cmd_destroy(st->cmd);
    kb_vk_buf_destroy(st->w);
    kb_vk_buf_destroy(st->sc);
    kb_vk_buf_destroy(st->bi);
    kb_vk_buf_destroy(st->a);
    kb_vk_buf_destroy(st->c);
    free(st);
}

/* A buffer holding t's bytes and a few zero bytes after them: shaders read 32-bit words, and a
 * GGML block's last word may reach past a row's end (never past the next word). */
static kb_vk_buf *upload_padded(struct kb_vk *vk, const kb_tensor *t, char *err, size_t errlen)
{
    const uint64_t n = round_up(t->bytes, 4) + 16;
    kb_vk_buf *b = kb_vk_buf_create(vk, n, err, errlen);
    if (!b)
        return NULL;
    uint8_t zeros[32] = {0};
    if (kb_vk_buf_write(b, 0, t->data, t->bytes, err, errlen) != 0 ||
        kb_vk_buf_write(b, t->bytes, zeros, n - t->bytes, err, errlen) != 0) {
        kb_vk_buf_destroy(b);
        return NULL;
    }
    return b;
}

kb_mma_vk *kb_mma_vk_upload(struct kb_vk *vk, const kb_case *c, const kb_tensor *in,
                            const kb_tensor *out, char *err, size_t errlen)
{
    kb_mma_vk *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    kb_mma_from_case(c, in, NULL, &st->s);
    const int ia = st->s.n_in - 1;
    st->cbytes = out[MMA_C].bytes + KB_GUARD_BYTES;
    if (!(st->w = upload_padded(vk, &in[0], err, errlen)) ||
        (st->s.fmt == KB_MMA_A4 && (!(st->sc = upload_padded(vk, &in[1], err, errlen)) ||
                                    !(st->bi = upload_padded(vk, &in[2], err, errlen)))) ||
        !(st->a = kb_vk_buf_from(vk, in[ia].data, in[ia].bytes, err, errlen)) ||
        !(st->c = kb_vk_buf_from(vk, out[MMA_C].data, st->cbytes, err, errlen))) {
        kb_mma_vk_release(st);
        return NULL;
    }
    return st;
}

typedef struct mm_push {
    uint32_t M, N, K, ldc, c_off, a_off, w_off, g_off;
} mm_push;

/* A binding of buf from byte `start` for `bytes`: the offset rounded down to the device's
 * alignment, the rest (delta) left to the shader. */
static kb_vk_bind bind_at(kb_vk_buf *buf, uint64_t start, uint64_t bytes, uint64_t align,
                          uint64_t *delta)
{
    const uint64_t off = start / align * align;
    *delta = start - off;
    uint64_t range = round_up(*delta + bytes, 4);
    if (off + range > kb_vk_buf_size(buf))
        range = kb_vk_buf_size(buf) - off;
    return (kb_vk_bind){buf, off, range};
}

int kb_mma_vk_record(struct kb_vk *vk, kb_mma_vk *st, const kb_vk_pipe *pipe, uint32_t bm,
                     uint32_t bn, char *err, size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const kb_mma *s = &st->s;
    const uint64_t align = L->storage_align;
    /* a binding spans at most cap bytes, its start rounded down to the alignment included */
    uint64_t cap = L->max_storage_range < (1ull << 31) ? L->max_storage_range : (1ull << 31);
    cap = cap > align + 64 ? cap - align - 64 : 0;
    const uint64_t wrow = (uint64_t)s->row_bytes;
    const uint64_t arow = 4ull * (uint64_t)s->K, crow = 4ull * (uint64_t)s->N;
    int64_t nrows = (int64_t)(cap / wrow), mrows = (int64_t)(cap / (arow > crow ? arow : crow));
    if (nrows < 1 || mrows < 1) {
        snprintf(err, errlen, "a row of W, A or C exceeds the %llu-byte storage binding",
                 (unsigned long long)L->max_storage_range);
        return -1;
    }
    if ((uint64_t)nrows > (uint64_t)L->max_wg_count[0] * bn)
        nrows = (int64_t)((uint64_t)L->max_wg_count[0] * bn);
    if ((uint64_t)mrows > (uint64_t)L->max_wg_count[1] * bm)
        mrows = (int64_t)((uint64_t)L->max_wg_count[1] * bm);
    if (nrows > s->N)
        nrows = s->N;
    if (mrows > s->M)
        mrows = s->M;
    const int64_t nch = (s->N + nrows - 1) / nrows, mch = (s->M + mrows - 1) / mrows;
    if (!(st->cmd = kb_vk_cmd_create(vk, (int)(nch * mch), err, errlen)))
        return -1;
    const int64_t ng = s->fmt == KB_MMA_A4 ? s->K / s->group : 0;
    for (int64_t mc = 0; mc < mch; mc++) {
        const int64_t m0 = mc * mrows, mn = s->M - m0 < mrows ? s->M - m0 : mrows;
        uint64_t da, dc;
        const kb_vk_bind ba = bind_at(st->a, (uint64_t)m0 * arow, (uint64_t)mn * arow, align, &da);
        const kb_vk_bind bc = bind_at(st->c, (uint64_t)m0 * crow, (uint64_t)mn * crow, align, &dc);
        for (int64_t nc = 0; nc < nch; nc++) {
            const int64_t n0 = nc * nrows, nn = s->N - n0 < nrows ? s->N - n0 : nrows;
            uint64_t dw, dg = 0;
            const kb_vk_bind bw = bind_at(st->w, (uint64_t)n0 * wrow, (uint64_t)nn * wrow, align, &dw);
            kb_vk_bind bs = bw, bb = bw; /* unused but for a4: any valid buffer */
            if (s->fmt == KB_MMA_A4) {
                bs = bind_at(st->sc, 2ull * (uint64_t)(n0 * ng), 2ull * (uint64_t)(nn * ng), align, &dg);
                bb = bind_at(st->bi, 2ull * (uint64_t)(n0 * ng), 2ull * (uint64_t)(nn * ng), align, &dg);
            }
            const kb_vk_bind b[5] = {bw, bs, bb, ba, bc};
            const mm_push pc = {(uint32_t)mn,          (uint32_t)nn,         (uint32_t)s->K,
                                (uint32_t)s->N,        (uint32_t)(dc / 4 + (uint64_t)n0),
                                (uint32_t)(da / 16),   (uint32_t)dw,         (uint32_t)(dg / 2)};
            const uint32_t gx = (uint32_t)((nn + bn - 1) / bn), gy = (uint32_t)((mn + bm - 1) / bm);
            if (kb_vk_cmd_dispatch(st->cmd, pipe, b, &pc, gx, gy, 1, err, errlen) != 0)
                return -1;
        }
    }
    return kb_vk_cmd_end(st->cmd, err, errlen);
}

int kb_mma_vk_run(void *state, const kb_env *env, double *gpu_seconds)
{
    kb_mma_vk *st = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(st->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "mma vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again: the device copy too (kb_impl.reset). */
int kb_mma_vk_reset(void *state, const kb_tensor *out)
{
    kb_mma_vk *st = state;
    char err[256];
    if (kb_vk_buf_write(st->c, 0, out[MMA_C].data, st->cbytes, err, sizeof err) != 0) {
        fprintf(stderr, "mma vk reset: %s\n", err);
        return -1;
    }
    return 0;
}

int kb_mma_vk_finish(void *state, kb_tensor *out)
{
    kb_mma_vk *st = state;
    char err[256];
    if (kb_vk_buf_read(st->c, 0, out[MMA_C].data, st->cbytes, err, sizeof err) != 0) {
        fprintf(stderr, "mma vk: %s\n", err);
        return -1;
    }
    return 0;
}

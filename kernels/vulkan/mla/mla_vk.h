/* What the two Vulkan MLA decode implementations share (mla_vk.c: "vk", mla_cm_vk.c: "vk_cm"):
 * the buffers, the absorb pass (mla_absorb.comp) before and the finalize pass
 * (mla_decode_finalize.comp) after their split pass, and the cutting of the cache into parts
 * that each fit one storage binding (T = 131072 x R = 512 in f16 is exactly lavapipe's 128 MiB
 * limit; larger ranks or smaller devices need several). A split never straddles two parts:
 * the split pass is dispatched once per part, its bindings starting at the part's first
 * position. */
#ifndef KB_MLA_VK_H
#define KB_MLA_VK_H

#include <stdint.h>

#include "mla_common.h"
#include "vk.h"

typedef struct mla_vk_state {
    kb_vk_buf *qn, *qpe, *c, *kpe, *wuk, *wuv, *out, *qa, *part_o, *part_ml;
    kb_vk_cmd *cmd;
    uint64_t obytes; /* payload + guard */
    uint32_t rows;   /* rows of qa and of the records: M, or M padded (zero rows) */
} mla_vk_state;

/* The split plan: nsplit splits of split_len positions (a multiple of the tile), grouped in
 * parts of part_len positions (a multiple of split_len). */
typedef struct mla_vk_plan {
    uint32_t split_len, nsplit, part_len;
} mla_vk_plan;

/* Splits for about target workgroups of row_blocks each (KB_VK_MLA_SPLITS=N overrides the
 * count), whole tiles of tile positions; parts as large as a binding allows
 * (KB_VK_MLA_PART=N: at most N positions, for tests). Returns 0, or -1 with err set. */
int kb_mla_vk_plan(const struct kb_vk *vk, const kb_mla_shape *s, uint32_t tile,
                   uint64_t row_blocks, uint64_t target, mla_vk_plan *pl, char *err,
                   size_t errlen);

/* Uploads the inputs, allocates out (with its guard), qa (rows >= M rows, zero past M) and
 * the split records (rows per split); creates a command list with room for the split pass's
 * parts. NULL with err set on failure. */
mla_vk_state *kb_mla_vk_setup(struct kb_vk *vk, const kb_mla_shape *s, const mla_vk_plan *pl,
                              uint32_t rows, const kb_tensor *in, const kb_tensor *out,
                              char *err, size_t errlen);

/* Records the absorb pass and a barrier. */
int kb_mla_vk_absorb(struct kb_vk *vk, mla_vk_state *st, const kb_mla_shape *s, char *err,
                     size_t errlen);

/* The bindings of the cache for part p: c and k_pe from the part's first position. */
void kb_mla_vk_part(const mla_vk_state *st, const kb_mla_shape *s, const mla_vk_plan *pl,
                    uint32_t p, kb_vk_bind *c, kb_vk_bind *kpe);

/* Records a barrier, the finalize pass, and ends the command list. */
int kb_mla_vk_finalize(struct kb_vk *vk, mla_vk_state *st, const kb_mla_shape *s,
                       const mla_vk_plan *pl, char *err, size_t errlen);

int kb_mla_vk_run(void *state, const kb_env *env, double *gpu_seconds);
int kb_mla_vk_finish(void *state, kb_tensor *out);
int kb_mla_vk_reset(void *state, const kb_tensor *out);
void kb_mla_vk_release(void *state);

/* KB_VK_MLA_RESCALE=X: the split passes' lazy-rescale slack TH (log2 units, 0 .. 14; default
 * 8; tests use 0, which rescales at every rise of a row's max). -1 with err when malformed. */
int kb_mla_vk_rescale(float *th, char *err, size_t errlen);

#endif

/* Host plumbing every Vulkan mma implementation shares (mma_vk_common.c): the inputs uploaded
 * as stored (weights in their format: the shaders dequantize while staging), and the dispatches
 * of one pipeline over the matrix, cut so that every binding fits the device's storage range
 * (lavapipe: 128 MiB): weight rows in chunks, token rows in chunks, one dispatch per pair, the
 * push constants of mma_stage.glsl giving each binding's start within its range. */
#ifndef KB_MMA_VK_H
#define KB_MMA_VK_H

#include "kbench.h"
#include "mma_common.h"
#include "vk.h"

typedef struct kb_mma_vk {
    kb_mma s;
    kb_vk_buf *w, *sc, *bi, *a, *c; /* sc, bi: a4 only */
    kb_vk_cmd *cmd;
    uint64_t cbytes; /* C payload + guard */
} kb_mma_vk;

/* Uploads a case's inputs and C (with its guard bytes). NULL with err set on failure. */
kb_mma_vk *kb_mma_vk_upload(struct kb_vk *vk, const kb_case *c, const kb_tensor *in,
                            const kb_tensor *out, char *err, size_t errlen);

/* Records the dispatches of pipe (5 bindings: W, scales, biases, A, C; the push constants of
 * mma_stage.glsl) over the whole matrix in tiles of bm tokens x bn weight rows per workgroup,
 * into a new command list. Returns 0, or -1 with err set. */
int kb_mma_vk_record(struct kb_vk *vk, kb_mma_vk *st, const kb_vk_pipe *pipe, uint32_t bm,
                     uint32_t bn, char *err, size_t errlen);

int kb_mma_vk_run(void *state, const kb_env *env, double *gpu_seconds);
int kb_mma_vk_finish(void *state, kb_tensor *out);
int kb_mma_vk_reset(void *state, const kb_tensor *out);
void kb_mma_vk_release(void *state);

/* The spec constant of the format (mma_stage.glsl FMT) and a4's group (else 32). */
static inline uint32_t kb_mma_vk_fmt(const kb_mma *s) { return (uint32_t)s->fmt; }

#endif

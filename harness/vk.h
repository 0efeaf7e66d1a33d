/* kbench Vulkan context: device choice, storage buffers, cached compute pipelines from embedded
 * SPIR-V, and recorded command lists timed with GPU timestamps. No Vulkan types appear here, so
 * the runner includes this header whether or not it was built with Vulkan.
 * Shader tuning aid: KB_VK_PIPELINE_STATS=1 prints the driver's statistics (registers, shared
 * memory, ...) of every new pipeline to stderr, =DIR also writes its internal representations
 * to DIR, where the driver has VK_KHR_pipeline_executable_properties (NVIDIA, not lavapipe).
 * Testing aid: KB_VK_COOPMAT_KHR_ANY_SHAPE=1 takes the f16 16x16x16 KHR cooperative-matrix shape
 * as offered wherever the extension is (Mesa 26's lavapipe lists only 8x8x8 but lowers any
 * shape in software, so the KHR shaders can be checked on a CPU); never for timing. */
#ifndef KB_VK_H
#define KB_VK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kb_vk;

/* device_index -1: automatic (discrete GPU, else integrated, else virtual, else CPU).
 * Returns NULL with the reason in err (no driver, no device, index out of range: the devices
 * are listed then, device too old). */
struct kb_vk *kb_vk_create(int device_index, char *err, size_t errlen);
/* 1 when the last kb_vk_create failed on a device that exists (it would not start: out of
 * memory, a driver error), 0 when there was simply no usable driver or device. The first is an
 * error of the run, the second a reason to skip. */
int kb_vk_create_fault(void);
void kb_vk_destroy(struct kb_vk *vk);
/* One line per device; returns the count, or -1 after printing why Vulkan is unavailable. */
int kb_vk_list(FILE *f);
/* One line: device, driver, API version, subgroup size, timestamp period. */
const char *kb_vk_describe(const struct kb_vk *vk);

/* What implementations plan with. */
typedef struct kb_vk_limits {
    uint32_t subgroup_size;      /* the device's (default) subgroup size */
    uint32_t subgroup_min;       /* smallest size a shader may run with (size control), else = */
    int subgroup_arith;          /* subgroupAdd in compute shaders */
    uint32_t max_wg_invocations; /* maxComputeWorkGroupInvocations */
    uint32_t max_wg_size_x;
    uint32_t max_wg_count[3];
    uint32_t max_shared_bytes;
    uint64_t max_storage_range;  /* bytes one storage-buffer binding may span */
    uint64_t storage_align;      /* minStorageBufferOffsetAlignment */
    uint64_t max_buffer_bytes;   /* one buffer (min of allocation, buffer and heap limits) */
    int timestamps;              /* 1: GPU timestamps; 0: run times are wall time */
    int is_cpu;                  /* a CPU implementation (lavapipe, SwiftShader) */
    int float16;                 /* shaderFloat16 enabled: f16 arithmetic in shaders */
    int coopmat_nv;              /* VK_NV_cooperative_matrix with f16 16x16x16 -> f32 products,
                                  * f16 storage buffers, subgroup shuffle and vote */
    int storage16;               /* 16-bit storage buffers (storageBuffer16BitAccess) */
    int coopmat_khr;             /* VK_KHR_cooperative_matrix with f16 16x16x16 -> f32 products at
                                  * subgroup scope in compute shaders, shaderFloat16, the Vulkan
                                  * memory model, subgroup shuffle and vote (0 when built with
                                  * Vulkan headers older than the extension) */
} kb_vk_limits;
const kb_vk_limits *kb_vk_get_limits(const struct kb_vk *vk);

/* ---- storage buffers (device-local; mapped directly when the memory is host-visible, else
 * written and read through a staging buffer) ---- */
typedef struct kb_vk_buf kb_vk_buf;
kb_vk_buf *kb_vk_buf_create(struct kb_vk *vk, uint64_t bytes, char *err, size_t errlen);
void kb_vk_buf_destroy(kb_vk_buf *b); /* NULL is fine */
uint64_t kb_vk_buf_size(const kb_vk_buf *b);
int kb_vk_buf_write(kb_vk_buf *b, uint64_t off, const void *src, uint64_t n, char *err,
                    size_t errlen);
int kb_vk_buf_read(kb_vk_buf *b, uint64_t off, void *dst, uint64_t n, char *err, size_t errlen);
/* A new buffer of n bytes holding a copy of src. */
kb_vk_buf *kb_vk_buf_from(struct kb_vk *vk, const void *src, uint64_t n, char *err,
                          size_t errlen);

/* ---- compute pipelines: set 0 holds nbind storage buffers at bindings 0..nbind-1; push
 * constants are push_bytes from offset 0; specialization constants 0..nspec-1 are uint32.
 * Cached in the context (same code and constants give the same pipeline); freed by
 * kb_vk_destroy. ---- */
typedef struct kb_vk_pipe kb_vk_pipe;
kb_vk_pipe *kb_vk_pipe_get(struct kb_vk *vk, const uint32_t *spv, size_t spv_bytes, int nbind,
                           uint32_t push_bytes, const uint32_t *spec, int nspec, char *err,
                           size_t errlen);

/* ---- command lists: recorded once, submitted any number of times. A list begins with a
 * barrier that makes earlier uploads visible and ends with one that makes its writes visible
 * to later lists, copies and the host; timestamps bracket the dispatches. ---- */
#define KB_VK_MAX_BIND 8
typedef struct kb_vk_bind {
    kb_vk_buf *buf;
    uint64_t offset; /* a multiple of storage_align */
    uint64_t range;  /* 0: to the end of the buffer; at most max_storage_range */
} kb_vk_bind;

typedef struct kb_vk_cmd kb_vk_cmd;
kb_vk_cmd *kb_vk_cmd_create(struct kb_vk *vk, int max_dispatches, char *err, size_t errlen);
/* binds: the pipeline's nbind buffers; push: its push_bytes (NULL when 0). */
int kb_vk_cmd_dispatch(kb_vk_cmd *c, const kb_vk_pipe *p, const kb_vk_bind *binds,
                       const void *push, uint32_t gx, uint32_t gy, uint32_t gz, char *err,
                       size_t errlen);
void kb_vk_cmd_barrier(kb_vk_cmd *c); /* later dispatches see earlier dispatches' writes */
int kb_vk_cmd_end(kb_vk_cmd *c, char *err, size_t errlen);
/* Submits, waits, and sets *seconds (may be NULL) to the time between the timestamps, or to the
 * wall time of submit-and-wait when the queue has no timestamps. Returns 0 or -1. */
int kb_vk_cmd_submit(kb_vk_cmd *c, double *seconds, char *err, size_t errlen);
void kb_vk_cmd_destroy(kb_vk_cmd *c); /* NULL is fine */

/* ---- recording many kernels into one list (model runs; kb_impl.record) ---- */
/* A list whose descriptor pools grow on demand (no dispatch limit) and that holds up to
 * max_marks timestamps besides its start and end. */
kb_vk_cmd *kb_vk_cmd_create_marked(struct kb_vk *vk, int max_marks, char *err, size_t errlen);
/* Writes a timestamp once all earlier commands are done; returns its index (0, 1, ...), or -1
 * when the queue has no timestamps or the list's marks are used up. */
int kb_vk_cmd_mark(kb_vk_cmd *c);
/* After a submit: seconds from the list's start to each of marks 0..n-1. Returns 0 or -1. */
int kb_vk_cmd_mark_times(kb_vk_cmd *c, double *sec, int n, char *err, size_t errlen);
/* Empties a list for recording again (same pools, same marks). */
int kb_vk_cmd_reset(kb_vk_cmd *c, char *err, size_t errlen);
/* Host data into a buffer, in the list (n <= 65536, off and n multiples of 4). */
int kb_vk_cmd_update(kb_vk_cmd *c, kb_vk_buf *b, uint64_t off, const void *data, uint64_t n,
                     char *err, size_t errlen);
/* A copy between buffers, in the list, after a barrier on earlier writes. */
int kb_vk_cmd_copy(kb_vk_cmd *c, kb_vk_buf *src, uint64_t soff, kb_vk_buf *dst, uint64_t doff,
                   uint64_t n, char *err, size_t errlen);
int kb_vk_cmd_dispatches(const kb_vk_cmd *c); /* recorded so far */
/* A host-visible buffer (results read back with kb_vk_buf_map after a list copied into it). */
kb_vk_buf *kb_vk_buf_create_host(struct kb_vk *vk, uint64_t bytes, char *err, size_t errlen);
const void *kb_vk_buf_map(const kb_vk_buf *b); /* NULL when not mapped */

/* The general form (prepare/run/finish/release) of an implementation that has the recording
 * form: uploads the inputs (in the kernel's layout) and outputs with their guard bytes, records
 * once, submits per run. An implementation's prepare calls kb_vk_rec_prepare with itself. */
struct kb_impl;
struct kb_env;
struct kb_case;
struct kb_tensor;
void *kb_vk_rec_prepare(const struct kb_impl *impl, const struct kb_env *env,
                        const struct kb_case *c, const struct kb_tensor *in,
                        const struct kb_tensor *out, char *err, size_t errlen);
int kb_vk_rec_run(void *state, const struct kb_env *env, double *gpu_seconds);
int kb_vk_rec_finish(void *state, struct kb_tensor *out);
int kb_vk_rec_reset(void *state, const struct kb_tensor *out);
void kb_vk_rec_release(void *state);

#ifdef __cplusplus
}
#endif
#endif

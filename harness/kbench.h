/* kbench: the core contract between the runner, families (reference/) and implementations
 * (kernels/). Read ../DESIGN.md for the architecture; this header is the whole API a new
 * family or implementation needs. */
#ifndef KBENCH_H
#define KBENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KB_MAX_PARAMS 8
#define KB_MAX_TENSORS 8
#define KB_ALIGN 64
#define KB_GUARD_BYTES 64 /* after every output buffer, CPU and Vulkan */
#define KB_GUARD_BYTE 0xA5

/* ---- tensors ---------------------------------------------------------------------------- */

typedef enum { KB_F32, KB_F16, KB_BF16, KB_I8, KB_U8, KB_I32, KB_F64, KB_U32 } kb_dtype;

size_t kb_dtype_size(kb_dtype t);
const char *kb_dtype_name(kb_dtype t);

typedef struct kb_tensor {
    char name[32];
    kb_dtype dtype; /* element type; packed formats are KB_U8 with shape [rows, row_bytes] */
    char elem[48];  /* what an element is where the dtype does not say it ("q4_0 blocks: ...",
                     * "bf16 bits", "u32 words of 4-bit codes, LSB first"); "" otherwise.
                     * Written into --dump manifests. */
    int ndim;
    int64_t shape[4];
    size_t bytes; /* payload bytes = product(shape) * dtype size */
    void *data;   /* KB_ALIGN aligned; KB_GUARD_BYTES of KB_GUARD_BYTE follow the payload */
    void *map;    /* kb_tensor_alloc_fenced: the mapping (else NULL) ... */
    size_t map_bytes; /* ... and its size */
} kb_tensor;

/* Allocates data (aligned, guarded). Returns 0, or -1 when the allocation fails. */
int kb_tensor_alloc(kb_tensor *t, const char *name, kb_dtype dt, int ndim, const int64_t *shape);
/* For inputs in check runs: the payload (KB_ALIGN aligned) is followed by fewer than KB_ALIGN
 * bytes of 0xFF (NaN in every float format, a NaN scale in every packed block) and then by an
 * inaccessible page, so that a kernel reading past an input's end gets NaN or a SIGSEGV, never
 * plausible numbers. No guard bytes to check. Freed by kb_tensor_free. */
int kb_tensor_alloc_fenced(kb_tensor *t, const char *name, kb_dtype dt, int ndim,
                           const int64_t *shape);
void kb_tensor_free(kb_tensor *t);
void kb_tensor_poison(kb_tensor *t);         /* payload := NaN (f32/f16/bf16) or 0xCD bytes */
int kb_tensor_guard_ok(const kb_tensor *t);  /* 1 when the guard bytes are intact */
void kb_tensor_guard_reset(kb_tensor *t);
int64_t kb_tensor_numel(const kb_tensor *t);

/* ---- RNG (splitmix64 seeded xoshiro256**) ------------------------------------------------ */

typedef struct kb_rng { uint64_t s[4]; } kb_rng;
void kb_rng_seed(kb_rng *r, uint64_t seed);
uint64_t kb_rng_u64(kb_rng *r);
float kb_rng_uniform(kb_rng *r, float lo, float hi); /* [lo, hi) */
float kb_rng_normal(kb_rng *r);                      /* N(0, 1) */

/* ---- f16 / bf16 conversions (exact, round to nearest even) ------------------------------- */

float kb_f16_to_f32(uint16_t h);
uint16_t kb_f32_to_f16(float f);
float kb_bf16_to_f32(uint16_t h);
uint16_t kb_f32_to_bf16(float f);

/* ---- families ------------------------------------------------------------------------------ */

typedef struct kb_param_def {
    const char *name;
    int64_t def; /* default value when a case does not name it */
    int64_t min, max;
    const char *help;
} kb_param_def;

struct kb_family;

/* Input distributions (--inputs): what generate() makes. RANDOM is what every family makes; the
 * others each family applies where they mean something (kb_family.inputs):
 *   OUTLIERS  a few activation channels 100x larger than the rest, as LLM activations have;
 *   PEAKY     attention/routing scores with one or a few dominant entries, very negative others;
 *   EXTREME   every code value of the format including its minimum (q8_0 -128), negative and
 *             tiny scales, bf16/f16 subnormals where the format allows them;
 *   ZEROS     all-zero activations (weights stay random): outputs exactly 0. */
typedef enum { KB_INPUTS_RANDOM, KB_INPUTS_OUTLIERS, KB_INPUTS_PEAKY, KB_INPUTS_EXTREME,
               KB_INPUTS_ZEROS, KB_INPUTS_COUNT } kb_inputs;
#define KB_INPUTS_BIT(d) (1u << (d))
const char *kb_inputs_name(kb_inputs d);

typedef struct kb_case {
    const struct kb_family *fam;
    int64_t p[KB_MAX_PARAMS]; /* in the family's parameter order */
    char label[64];           /* model name of the shape, e.g. "llama3-8b.ffn_up"; may be "" */
    unsigned tags;            /* KB_TAG_* from the suite line's tag= */
} kb_case;
#define KB_TAG_QUICK 1u /* tag=quick: in the quick run (the first look at a machine) */

typedef struct kb_family {
    const char *name;  /* "matvec_q4_0" */
    const char *suite; /* default suite it belongs to */
    const char *help;
    int nparams;
    kb_param_def params[KB_MAX_PARAMS];
    /* Shape check beyond min/max. Returns 0, or -1 with a message in err. */
    int (*validate)(const int64_t *p, char *err, size_t errlen);
    /* Tensor descriptors (name, dtype, ndim, shape; no data) for inputs and outputs. */
    int (*describe)(const int64_t *p, kb_tensor *in, int *n_in, kb_tensor *out, int *n_out);
    /* Fills allocated inputs with valid random data (weights directly in packed form) drawn
     * from `dist` (always one of the family's `inputs`). */
    void (*generate)(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist);
    /* The distributions generate() knows beyond RANDOM: a mask of KB_INPUTS_BIT(). */
    unsigned inputs;
    /* The definition: plain C, no SIMD, no threads. */
    void (*reference)(const int64_t *p, const kb_tensor *in, kb_tensor *out);
    /* Cost model. */
    double (*bytes)(const int64_t *p);
    double (*flops)(const int64_t *p);
    /* Inputs re-read on every call (rotated beyond the LLC for cold timing): a mask of inputs. */
    unsigned rotate_mask;
    double tol_nmse; /* NMSE tolerance (used where the family has no `condition`) */
    /* The conditioned check (README "Checks"): for output `o`, scale[i] = the magnitude the
     * computation of element i handled: the sum of the absolute values of the terms whose sum
     * it is (a dot product: sum_k |w_k x_k|; attention: sum_j p_j |v_j|; a recurrence: the
     * same bound carried through its steps), computed in double from the inputs. An element's
     * error is |out_i - ref_i| / scale[i]; the row passes when the largest is <= tol_cond. So a
     * tolerance means the same at one row as at ten thousand, and cancellation (|y| << scale)
     * cannot fail a correct kernel. NULL: NMSE against tol_nmse decides. */
    void (*condition)(const int64_t *p, const kb_tensor *in, int o, double *scale);
    double tol_cond; /* conditioned tolerance for implementations with f32 arithmetic */
    /* A comparison of the family's own for output `o` (top-K ids: equal sets but for ties
     * within tolerance), replacing the element-wise one for that output. Returns the error to
     * hold against the tolerance (0: identical), or INFINITY with a reason in msg. NULL: the
     * element-wise check. Guard bytes and NaN/Inf are checked before it, whatever it says. */
    double (*compare)(const int64_t *p, const kb_tensor *in, int o, const kb_tensor *out,
                      const kb_tensor *ref, char *msg, size_t msglen);
    /* Bytes of the rotated inputs that one call reads, where that is less than all of them (an
     * expert matvec reads K of E matrices); the copies for cold timing are counted from it.
     * NULL: all of them. */
    double (*rotated_read)(const int64_t *p);
    /* Where one call reads a small part of a large input (K of E experts), copying that input
     * for cold timing copies mostly bytes no call reads (E = 512: gigabytes). Instead
     * rotate_mask_for(p) names the inputs to copy for this shape (the expert index), and
     * rotate(p, in, k) makes copy k (k >= 1) read other bytes than copy 0 (other experts).
     * NULL: rotate_mask, and copies equal to the original. */
    unsigned (*rotate_mask_for)(const int64_t *p);
    void (*rotate)(const int64_t *p, kb_tensor *in, int k);
    /* A small shape (suite-line keys, "rows=33 cols=64") on which the generic tests run every
     * family: planted bugs (tests/harness/test_planted.c), seed sweeps. Required. */
    const char *test_shape;
    /* The smallest legal shape ("rows=1 cols=32"): the seed sweep of tests/harness/test_inputs.c
     * runs every implementation on it for seeds 1..200 (NULL: test_shape). */
    const char *smallest_shape;
} kb_family;

int64_t kb_case_param(const kb_case *c, const char *name); /* -1 when the family has none */

/* ---- thread pool ------------------------------------------------------------------------- */

typedef struct kb_pool kb_pool;
typedef void (*kb_task_fn)(void *arg, int tid, int nthreads);
kb_pool *kb_pool_create(int nthreads, int pin); /* pin: bind thread i to core i (hwloc) */
void kb_pool_destroy(kb_pool *p);
int kb_pool_size(const kb_pool *p);
/* Runs fn(arg, tid, n) on every thread (the caller is thread 0) and waits for all. */
void kb_pool_run(kb_pool *p, kb_task_fn fn, void *arg);
/* Splits [0, n) into near-equal chunks aligned to `align`; thread tid gets [*lo, *hi). */
void kb_split(int64_t n, int64_t align, int tid, int nthreads, int64_t *lo, int64_t *hi);

/* ---- implementations --------------------------------------------------------------------- */

typedef enum { KB_BACKEND_CPU, KB_BACKEND_VULKAN } kb_backend;

struct kb_vk;      /* harness/vk.h */
struct kb_vk_cmd;  /* harness/vk.h: a command list */
struct kb_vk_bind; /* harness/vk.h: a buffer range {buf, offset, range} */

typedef struct kb_env {
    kb_pool *pool;     /* CPU implementations */
    struct kb_vk *vk;  /* Vulkan implementations; NULL when no device */
} kb_env;

#define KB_REC_FOLDED UINT64_MAX /* rec_layout: the input lives in another input's layout */

typedef struct kb_impl {
    const char *family; /* family name */
    const char *name;   /* "ref", "avx2", "avx512", "avx2_q8act", "vk", ... */
    kb_backend backend;
    /* NULL when usable here, else a short reason ("CPU lacks avx512f"). */
    const char *(*available)(const kb_env *env);
    double tol_nmse;     /* 0: the family's default */
    double tol_cond;     /* 0: the family's default (families with `condition`) */
    /* A conditioned tolerance for one input distribution where this implementation's error
     * there is larger by nature (int8 activations and outlier channels), said in tol_why;
     * 0: tol_cond. */
    double tol_cond_inputs[KB_INPUTS_COUNT];
    const char *tol_why; /* why this tolerance differs from the family's */

    /* Simple CPU form: stateless; run reads inputs and writes every output element. */
    void (*cpu_run)(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool);

    /* General form (Vulkan, repacking CPU kernels). prepare is not timed: it may repack or
     * upload `in` and must remember where outputs go; it returns state or NULL with err set.
     * run is the timed region; gpu_seconds (may be NULL) receives device time when known.
     * finish copies results (payload and guard bytes) back into `out`. */
    void *(*prepare)(const kb_env *env, const kb_case *c, const kb_tensor *in,
                     const kb_tensor *out, char *err, size_t errlen);
    int (*run)(void *state, const kb_env *env, double *gpu_seconds);
    int (*finish)(void *state, kb_tensor *out);
    void (*release)(void *state);
    /* Implementations whose outputs live outside `out` (a device buffer): writes `out` (just
     * poisoned by the runner, guard bytes included) over them again, so the check after timing
     * catches elements a kernel stopped writing. Required for Vulkan (a test checks it). */
    int (*reset)(void *state, const kb_tensor *out);


    /* Recording form (Vulkan; README "Recording" in models/README.md): the kernel on device
     * buffers its caller owns, recorded into its caller's command list, so that a model run
     * keeps weights and caches resident and submits a whole step as one list. The suites time
     * the same code: kb_vk_rec_prepare/run/finish/release (vk.h) are the general form above
     * built on these four, for an implementation that has nothing else to do in prepare.
     * rec_layout: bytes of input i on the device in the kernel's own layout (an input it
     *   repacks: matvec weights), or 0 when the kernel reads input i as the tensor's bytes.
     *   KB_REC_FOLDED: input i has no range of its own, its data lives in another input's
     *   layout (affine matvec scales and biases, in the codes' layout).
     * rec_upload: writes input i in that layout into dst, a range of rec_layout bytes, from
     *   the host tensors in[] (all inputs: a layout may fold several); called only for inputs
     *   whose rec_layout is neither 0 nor KB_REC_FOLDED. NULL when rec_layout always gives 0.
     * rec_pad: bytes past the end of input i's range that the kernel reads (whole tiles of a
     *   cache), which its caller keeps inside the buffer and finite (zeros); NULL: none.
     * rec_scratch: device bytes the kernel needs besides its tensors (split-K partials); 0
     *   none. NULL: none. The caller may share one scratch range among kernels it separates
     *   with barriers.
     * record: records the dispatches of case c into cmd, reading in[i] (one range per input,
     *   in the kernel's layout) and writing out[o] (payload bytes), with scratch (NULL when
     *   rec_scratch is 0). The kernel records the barriers between its own passes, none before
     *   its first dispatch or after its last: the caller puts those between dependent kernels.
     *   Ranges start at multiples of storage_align; an input the kernel repacks may span more
     *   than max_storage_range (the kernel splits it), every other range at most that.
     *   Elementwise families document which outputs may alias which inputs. Returns 0, or -1
     *   with a message in err. The CPU needs no such form: cpu_run already works on tensors
     *   whose data point into the caller's memory. */
    uint64_t (*rec_layout)(const kb_env *env, const kb_case *c, int input);
    int (*rec_upload)(const kb_env *env, const kb_case *c, int input, const kb_tensor *in,
                      const struct kb_vk_bind *dst, char *err, size_t errlen);
    uint64_t (*rec_scratch)(const kb_env *env, const kb_case *c);
    uint64_t (*rec_pad)(const kb_env *env, const kb_case *c, int input);
    int (*record)(const kb_env *env, const kb_case *c, struct kb_vk_cmd *cmd,
                  const struct kb_vk_bind *in, const struct kb_vk_bind *out,
                  const struct kb_vk_bind *scratch, char *err, size_t errlen);
} kb_impl;

/* ---- registry ------------------------------------------------------------------------------ */

int kb_family_count(void);
const kb_family *kb_family_at(int i);
const kb_family *kb_family_find(const char *name);
int kb_impl_count(void);
const kb_impl *kb_impl_at(int i);

/* ---- CPU features (cpuid + xgetbv) --------------------------------------------------------- */

typedef struct kb_cpu_features {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16, avxvnni, amx_int8,
        amx_bf16, amx_os;
    char brand[64];
    int family, model, stepping; /* cpuid leaf 1, extended family/model folded in */
} kb_cpu_features;
const kb_cpu_features *kb_cpu(void);

#ifdef __cplusplus
}
#endif
#endif

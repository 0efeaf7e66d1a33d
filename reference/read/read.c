/* read: the bandwidth yardstick. s = sum of x, x f32 [n]. Its GB/s is what a kernel that only
 * streams its input could reach on this machine, measured in the same run as the kernels. */
#include <stdio.h>
#include <string.h>

#include "kbench.h"

enum { RD_MIB };

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    memset(in, 0, sizeof *in);
    memset(out, 0, sizeof *out);
    snprintf(in->name, sizeof in->name, "x");
    in->dtype = KB_F32;
    in->ndim = 1;
    in->shape[0] = p[RD_MIB] << 18; /* floats in MiB */
    in->bytes = (size_t)p[RD_MIB] << 20;
    snprintf(out->name, sizeof out->name, "sum");
    out->dtype = KB_F32;
    out->ndim = 1;
    out->shape[0] = 1;
    out->bytes = 4;
    *ni = *no = 1;
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    float *x = in->data;
    for (int64_t i = 0; i < in->shape[0]; i++)
        x[i] = kb_rng_uniform(rng, 0.0f, 1.0f); /* positive: the sum has no cancellation */
}

static void read_reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const float *x = in->data;
    double s = 0;
    for (int64_t i = 0; i < in->shape[0]; i++)
        s += x[i];
    *(float *)out->data = (float)s;
}

static double bytes(const int64_t *p) { return (double)((size_t)p[RD_MIB] << 20); }
static double flops(const int64_t *p) { return (double)(p[RD_MIB] << 18); }

const kb_family kb_family_read = {
    .name = "read",
    .suite = "read",
    .help = "sum of an f32 array: the streaming-read bandwidth yardstick",
    .nparams = 1,
    .params = {{"mib", 256, 1, 1 << 16, "array size in MiB"}},
    .describe = describe,
    .generate = generate,
    .reference = read_reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 1,
    .tol_nmse = 1e-8,
    .test_shape = "mib=1",
    .smallest_shape = "mib=1",
};

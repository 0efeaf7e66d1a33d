/* Aligned tensors with guard bytes after the payload. */
#include "kbench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

size_t kb_dtype_size(kb_dtype t)
{
    switch (t) {
    case KB_F32: case KB_I32: case KB_U32: return 4;
    case KB_F16: case KB_BF16: return 2;
    case KB_I8: case KB_U8: return 1;
    case KB_F64: return 8;
    }
    return 0;
}

const char *kb_dtype_name(kb_dtype t)
{
    static const char *n[] = {"f32", "f16", "bf16", "i8", "u8", "i32", "f64", "u32"};
    return (unsigned)t < sizeof n / sizeof n[0] ? n[t] : "?";
}

int64_t kb_tensor_numel(const kb_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

static int tensor_init(kb_tensor *t, const char *name, kb_dtype dt, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return -1;
        t->shape[i] = shape[i];
        if ((size_t)shape[i] > SIZE_MAX / 16 / n)
            return -1;
        n *= (size_t)shape[i];
    }
    t->bytes = n * kb_dtype_size(dt);
    return 0;
}

int kb_tensor_alloc(kb_tensor *t, const char *name, kb_dtype dt, int ndim, const int64_t *shape)
{
    if (tensor_init(t, name, dt, ndim, shape) != 0)
        return -1;
    size_t total = (t->bytes + KB_GUARD_BYTES + KB_ALIGN - 1) / KB_ALIGN * KB_ALIGN;
    t->data = aligned_alloc(KB_ALIGN, total);
    if (!t->data)
        return -1;
    kb_tensor_guard_reset(t);
    return 0;
}

int kb_tensor_alloc_fenced(kb_tensor *t, const char *name, kb_dtype dt, int ndim,
                           const int64_t *shape)
{
    if (tensor_init(t, name, dt, ndim, shape) != 0)
        return -1;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t padded = (t->bytes + KB_ALIGN - 1) / KB_ALIGN * KB_ALIGN; /* payload + < 64 bytes */
    size_t body = (padded + page - 1) / page * page;
    size_t total = body + page;
    void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    if (mprotect((char *)m + body, page, PROT_NONE) != 0) {
        munmap(m, total);
        return -1;
    }
    t->map = m;
    t->map_bytes = total;
    t->data = (char *)m + body - padded; /* page-aligned base, so KB_ALIGN aligned */
    memset((char *)t->data + t->bytes, 0xFF, padded - t->bytes);
    return 0;
}

void kb_tensor_free(kb_tensor *t)
{
    if (t->map)
        munmap(t->map, t->map_bytes);
    else
        free(t->data);
    t->data = t->map = NULL;
}

void kb_tensor_guard_reset(kb_tensor *t)
{
    memset((char *)t->data + t->bytes, KB_GUARD_BYTE, KB_GUARD_BYTES);
}

int kb_tensor_guard_ok(const kb_tensor *t)
{
    const unsigned char *g = (const unsigned char *)t->data + t->bytes;
    for (int i = 0; i < KB_GUARD_BYTES; i++)
        if (g[i] != KB_GUARD_BYTE)
            return 0;
    return 1;
}

void kb_tensor_poison(kb_tensor *t)
{
    size_t n = (size_t)kb_tensor_numel(t);
    switch (t->dtype) {
    case KB_F32: {
        float *f = t->data;
        for (size_t i = 0; i < n; i++)
            f[i] = NAN;
        break;
    }
    case KB_F16: case KB_BF16: {
        uint16_t *h = t->data;
        for (size_t i = 0; i < n; i++)
            h[i] = 0x7FFF; /* a NaN in both f16 and bf16 */
        break;
    }
    default:
        memset(t->data, 0xCD, t->bytes);
    }
}

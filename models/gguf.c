/* GGUF parsing with a bounds-checked cursor (gguf.h). */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STR (1u << 20)  /* a key or string value longer than 1 MiB is taken as corruption */
#define MAX_NAME 95         /* tensor names (ggml allows 63) */

typedef struct cur {
    const uint8_t *p;
    size_t left, size;
    char *err;
    size_t errlen;
    int bad;
} cur;

static int fail(cur *c, const char *fmt, ...)
{
    if (!c->bad) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(c->err, c->errlen, "%s (at byte %zu of %zu)", msg, c->size - c->left, c->size);
    }
    c->bad = 1;
    return -1;
}

static int take(cur *c, void *dst, size_t n, const char *what)
{
    if (c->bad)
        return -1;
    if (n > c->left)
        return fail(c, "truncated: %s needs %zu bytes, %zu left", what, n, c->left);
    memcpy(dst, c->p, n);
    c->p += n;
    c->left -= n;
    return 0;
}

static int skip(cur *c, uint64_t n, const char *what)
{
    if (c->bad)
        return -1;
    if (n > c->left)
        return fail(c, "truncated: %s needs %llu bytes, %zu left", what, (unsigned long long)n,
                    c->left);
    c->p += n;
    c->left -= (size_t)n;
    return 0;
}

static int u32(cur *c, uint32_t *v, const char *what) { return take(c, v, 4, what); }
static int u64(cur *c, uint64_t *v, const char *what) { return take(c, v, 8, what); }

/* A string: its bytes stay in the file. */
static int str(cur *c, const char **s, uint64_t *n, const char *what)
{
    if (u64(c, n, what) != 0)
        return -1;
    if (*n > MAX_STR)
        return fail(c, "%s: length %llu is not plausible", what, (unsigned long long)*n);
    *s = (const char *)c->p;
    return skip(c, *n, what);
}

/* The tables a failed parse leaves (the mapping stays: gguf_open releases it). */
static void release_tables(gguf_file *g)
{
    free(g->kv);
    free(g->t);
    g->kv = NULL;
    g->t = NULL;
    g->n_kv = g->n_t = 0;
}

static const int scalar_bytes[GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* One value of type t (not an array) into kv (scalars and strings). */
static int value(cur *c, uint32_t t, gguf_kv *kv)
{
    if (t >= GGUF_NTYPES || t == GGUF_ARRAY)
        return fail(c, "value type %u unknown", t);
    if (t == GGUF_STRING) {
        const char *s;
        uint64_t n;
        if (str(c, &s, &n, "string value") != 0)
            return -1;
        if (kv) {
            kv->str = s;
            kv->str_len = n;
        }
        return 0;
    }
    uint8_t b[8] = {0};
    if (take(c, b, (size_t)scalar_bytes[t], "value") != 0)
        return -1;
    if (!kv)
        return 0;
    switch (t) {
    case GGUF_U8: kv->v.u = b[0]; break;
    case GGUF_I8: kv->v.i = (int8_t)b[0]; break;
    case GGUF_BOOL: kv->v.u = b[0] != 0; break;
    case GGUF_U16: { uint16_t x; memcpy(&x, b, 2); kv->v.u = x; break; }
    case GGUF_I16: { int16_t x; memcpy(&x, b, 2); kv->v.i = x; break; }
    case GGUF_U32: { uint32_t x; memcpy(&x, b, 4); kv->v.u = x; break; }
    case GGUF_I32: { int32_t x; memcpy(&x, b, 4); kv->v.i = x; break; }
    case GGUF_F32: { float x; memcpy(&x, b, 4); kv->v.f = x; break; }
    case GGUF_U64: memcpy(&kv->v.u, b, 8); break;
    case GGUF_I64: memcpy(&kv->v.i, b, 8); break;
    case GGUF_F64: memcpy(&kv->v.f, b, 8); break;
    }
    return 0;
}

static uint64_t type_block(uint32_t t, uint64_t *block_bytes)
{
    switch (t) {
    case GGML_F32: *block_bytes = 4; return 1;
    case GGML_F16: *block_bytes = 2; return 1;
    case GGML_BF16: *block_bytes = 2; return 1;
    case GGML_Q4_0: *block_bytes = 18; return 32;
    case GGML_Q8_0: *block_bytes = 34; return 32;
    default: *block_bytes = 0; return 0;
    }
}

const char *gguf_type_name(uint32_t t)
{
    static const char *n[] = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1",
                              "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K",
                              "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
                              "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
                              "BF16"};
    return t < sizeof n / sizeof n[0] ? n[t] : "unknown";
}

int gguf_parse(gguf_file *g, const uint8_t *buf, size_t size, char *err, size_t errlen)
{
    void *map = g->map;
    memset(g, 0, sizeof *g);
    g->map = map;
    g->buf = buf;
    g->size = size;
    cur c = {buf, size, size, err, errlen, 0};
    uint32_t magic = 0;
    if (u32(&c, &magic, "magic") != 0)
        return -1;
    if (memcmp(&magic, "GGUF", 4) != 0)
        return fail(&c, "not a GGUF file (magic %02x %02x %02x %02x)", buf[0], buf[1], buf[2],
                    buf[3]);
    if (u32(&c, &g->version, "version") != 0)
        return -1;
    if (g->version != 2 && g->version != 3)
        return fail(&c, "GGUF version %u: this reader takes 2 and 3", g->version);
    uint64_t nt, nkv;
    if (u64(&c, &nt, "tensor count") != 0 || u64(&c, &nkv, "metadata count") != 0)
        return -1;
    /* every entry takes at least 12 bytes (kv: key length + type) or 24 (tensor) */
    if (nkv > c.left / 12 || nt > c.left / 24)
        return fail(&c, "truncated or corrupt: %llu metadata entries and %llu tensors cannot fit "
                        "in %zu bytes",
                    (unsigned long long)nkv, (unsigned long long)nt, c.left);
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->t = calloc(nt ? nt : 1, sizeof *g->t);
    if (!g->kv || !g->t) {
        release_tables(g);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->alignment = 32;
    for (uint64_t i = 0; i < nkv && !c.bad; i++) {
        gguf_kv *kv = &g->kv[i];
        const char *k;
        if (str(&c, &k, &kv->key_len, "key") != 0 || u32(&c, &kv->type, "value type") != 0)
            break;
        kv->key = k;
        g->n_kv = i + 1;
        if (kv->type == GGUF_ARRAY) {
            if (u32(&c, &kv->arr_type, "array type") != 0 || u64(&c, &kv->arr_n, "array length"))
                break;
            if (kv->arr_type >= GGUF_NTYPES || kv->arr_type == GGUF_ARRAY) {
                fail(&c, "key %.*s: array of type %u not supported", (int)kv->key_len, k,
                     kv->arr_type);
                break;
            }
            if (kv->arr_type == GGUF_STRING) {
                if (kv->arr_n > c.left / 8) {
                    fail(&c, "truncated or corrupt: key %.*s: %llu strings cannot fit",
                         (int)kv->key_len, k,
                         (unsigned long long)kv->arr_n);
                    break;
                }
                for (uint64_t j = 0; j < kv->arr_n && !c.bad; j++)
                    value(&c, GGUF_STRING, NULL);
            } else {
                const uint64_t eb = (uint64_t)scalar_bytes[kv->arr_type];
                if (kv->arr_n > c.left / eb) {
                    fail(&c, "truncated or corrupt: key %.*s: %llu elements cannot fit",
                         (int)kv->key_len, k,
                         (unsigned long long)kv->arr_n);
                    break;
                }
                skip(&c, kv->arr_n * eb, "array");
            }
        } else {
            value(&c, kv->type, kv);
        }
    }
    if (c.bad) {
        release_tables(g);
        return -1;
    }
    const gguf_kv *al = gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_U32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) || al->v.u > 65536) {
            fail(&c, "general.alignment must be a power of two up to 65536 (u32)");
            release_tables(g);
            return -1;
        }
        g->alignment = al->v.u;
    }
    for (uint64_t i = 0; i < nt && !c.bad; i++) {
        gguf_tensor *t = &g->t[i];
        const char *name;
        uint64_t nl;
        if (str(&c, &name, &nl, "tensor name") != 0)
            break;
        if (nl == 0 || nl > MAX_NAME) {
            fail(&c, "tensor %llu: name length %llu", (unsigned long long)i, (unsigned long long)nl);
            break;
        }
        memcpy(t->name, name, nl);
        t->name[nl] = 0;
        if (strlen(t->name) != nl) {
            fail(&c, "tensor %llu: name holds a NUL byte", (unsigned long long)i);
            break;
        }
        if (u32(&c, &t->ndim, "dimension count") != 0)
            break;
        if (t->ndim < 1 || t->ndim > 4) {
            fail(&c, "tensor %s: %u dimensions", t->name, t->ndim);
            break;
        }
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->ndim && !c.bad; d++) {
            if (u64(&c, &t->ne[d], "dimension") != 0)
                break;
            if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || n > (1ull << 50) / t->ne[d])
                fail(&c, "tensor %s: dimension %u = %llu", t->name, d,
                     (unsigned long long)t->ne[d]);
            else
                n *= t->ne[d];
        }
        for (uint32_t d = t->ndim; d < 4; d++)
            t->ne[d] = 1;
        if (c.bad || u32(&c, &t->type, "tensor type") != 0 || u64(&c, &t->offset, "offset") != 0)
            break;
        uint64_t bb, blk = type_block(t->type, &bb);
        if (!blk) { /* a type we cannot size: the file may still be read when unused */
            t->bytes = 0;
        } else {
            if (t->ne[0] % blk) {
                fail(&c, "tensor %s: rows of %llu values are not whole %s blocks", t->name,
                     (unsigned long long)t->ne[0], gguf_type_name(t->type));
                break;
            }
            t->bytes = n / blk * bb;
        }
        if (t->offset % g->alignment) {
            fail(&c, "tensor %s: offset %llu is not a multiple of the alignment %llu", t->name,
                 (unsigned long long)t->offset, (unsigned long long)g->alignment);
            break;
        }
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(g->t[j].name, t->name) == 0) {
                fail(&c, "tensor %s appears twice", t->name);
                break;
            }
        g->n_t = i + 1;
    }
    if (c.bad) {
        release_tables(g);
        return -1;
    }
    /* the data section starts at the next multiple of the alignment */
    const size_t here = size - c.left;
    const uint64_t data = (here + g->alignment - 1) / g->alignment * g->alignment;
    if (data > size && nt > 0) {
        snprintf(err, errlen, "truncated: the data section would start at byte %llu of %zu",
                 (unsigned long long)data, size);
        release_tables(g);
        return -1;
    }
    for (uint64_t i = 0; i < nt; i++) {
        gguf_tensor *t = &g->t[i];
        const uint64_t avail = data <= size ? size - data : 0;
        if (t->offset > avail || t->bytes > avail - t->offset) {
            snprintf(err, errlen, "truncated: tensor %s (%llu bytes at data offset %llu) ends "
                     "past the file's %zu bytes", t->name, (unsigned long long)t->bytes,
                     (unsigned long long)t->offset, size);
            release_tables(g);
            return -1;
        }
        t->data = buf + data + t->offset;
    }
    return 0;
}

int gguf_open(gguf_file *g, const char *path, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 8) {
        snprintf(err, errlen, "%s: %s", path,
                 fstat(fd, &st) != 0 ? strerror(errno)
                 : !S_ISREG(st.st_mode) ? "not a regular file"
                                        : "truncated: shorter than a GGUF header");
        close(fd);
        return -1;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        return -1;
    }
    char e[400];
    g->map = m;
    if (gguf_parse(g, m, (size_t)st.st_size, e, sizeof e) != 0) {
        munmap(m, (size_t)st.st_size);
        g->map = NULL;
        snprintf(err, errlen, "%s: %s", path, e);
        return -1;
    }
    return 0;
}

void gguf_close(gguf_file *g)
{
    free(g->kv);
    free(g->t);
    if (g->map)
        munmap(g->map, g->size);
    memset(g, 0, sizeof *g);
}

const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key)
{
    const size_t n = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key_len == n && memcmp(g->kv[i].key, key, n) == 0)
            return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_t; i++)
        if (strcmp(g->t[i].name, name) == 0)
            return &g->t[i];
    return NULL;
}

int gguf_get_uint(const gguf_file *g, const char *key, uint64_t *v)
{
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv)
        return -1;
    switch (kv->type) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: *v = kv->v.u; return 0;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
        if (kv->v.i < 0)
            return -1;
        *v = (uint64_t)kv->v.i;
        return 0;
    default: return -1;
    }
}

int gguf_get_float(const gguf_file *g, const char *key, double *v)
{
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv)
        return -1;
    if (kv->type == GGUF_F32 || kv->type == GGUF_F64) {
        *v = kv->v.f;
        return 0;
    }
    uint64_t u;
    if (gguf_get_uint(g, key, &u) != 0)
        return -1;
    *v = (double)u;
    return 0;
}

int gguf_get_str(const gguf_file *g, const char *key, char *buf, size_t n)
{
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_STRING || n == 0)
        return -1;
    const size_t k = kv->str_len < n - 1 ? (size_t)kv->str_len : n - 1;
    memcpy(buf, kv->str, k);
    buf[k] = 0;
    return 0;
}

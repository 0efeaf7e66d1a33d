/* A GGUF reader (versions 2 and 3): the key-value metadata, the tensor table and the data, every
 * count, length and offset checked against the bytes that hold it, so that a malformed or
 * truncated file is an error with a message, never a read out of bounds. */
#ifndef KB_GGUF_H
#define KB_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum { GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL,
       GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_NTYPES };

/* ggml tensor types kbench reads */
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_BF16 = 30 };

typedef struct gguf_kv {
    const char *key; /* points into the file: key_len bytes, not NUL-terminated */
    uint64_t key_len;
    uint32_t type;
    union {
        uint64_t u;
        int64_t i;
        double f;
    } v;              /* scalars */
    const char *str;  /* GGUF_STRING: str_len bytes */
    uint64_t str_len;
    uint32_t arr_type; /* GGUF_ARRAY: element type and count */
    uint64_t arr_n;
} gguf_kv;

typedef struct gguf_tensor {
    char name[96];
    uint32_t ndim;
    uint64_t ne[4]; /* ne[0]: the contiguous dimension (a row) */
    uint32_t type;
    uint64_t offset; /* from the start of the data section */
    uint64_t bytes;
    const uint8_t *data;
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *buf; /* the whole file */
    size_t size;
    void *map;          /* mmap of gguf_open, NULL for gguf_parse */
    uint32_t version;
    uint64_t alignment;
    gguf_kv *kv;
    uint64_t n_kv;
    gguf_tensor *t;
    uint64_t n_t;
} gguf_file;

/* Maps and parses path. Returns 0, or -1 with err ("FILE: ..."). */
int gguf_open(gguf_file *g, const char *path, char *err, size_t errlen);
/* Parses a file already in memory (buf stays the caller's). */
int gguf_parse(gguf_file *g, const uint8_t *buf, size_t size, char *err, size_t errlen);
void gguf_close(gguf_file *g);

const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);
/* An integer key of any integer type (negative values refused); 0, or -1 when absent. */
int gguf_get_uint(const gguf_file *g, const char *key, uint64_t *v);
int gguf_get_float(const gguf_file *g, const char *key, double *v); /* f32, f64, integers */
/* A string key into buf (NUL-terminated, cut to n - 1); 0 or -1 when absent. */
int gguf_get_str(const gguf_file *g, const char *key, char *buf, size_t n);
const char *gguf_type_name(uint32_t ggml_type);

#endif

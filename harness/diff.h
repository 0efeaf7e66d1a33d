/* Comparing an implementation's outputs with the reference's. */
#ifndef KB_DIFF_H
#define KB_DIFF_H

#include "kbench.h"

typedef struct kb_diff {
    double nmse;      /* sum((a-b)^2) / sum(b^2), in double */
    double max_abs;   /* max |a-b| */
    double cosine;    /* a.b / (|a||b|) */
    int64_t nonfinite; /* NaN or Inf elements in a (NaN = an unwritten, poisoned element too) */
    int64_t first_bad; /* index of the first non-finite element, -1 if none */
    int guard_ok;
} kb_diff;

/* a: the implementation's output, b: the reference's. Same shape and dtype (f32/f16/bf16/i32). */
void kb_diff_tensors(const kb_tensor *a, const kb_tensor *b, kb_diff *d);

/* Element i of t as a double (f32/f64/f16/bf16/i32/i8/u8). */
double kb_tensor_get(const kb_tensor *t, int64_t i);

#endif

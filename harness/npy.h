/* NumPy .npy (format 1.0) writer and reader, so anyone can check a kernel's inputs and outputs
 * in Python, and run a kernel on inputs captured elsewhere (--load). */
#ifndef KB_NPY_H
#define KB_NPY_H

#include "kbench.h"

/* Writes t to path atomically (a temporary file renamed into place). Returns 0 or -1. */
int kb_npy_write(const char *path, const kb_tensor *t);
/* The numpy dtype string of t's elements ("<f4", "<u2" for bf16 bits, ...). */
const char *kb_npy_descr(kb_dtype t);
/* Reads path into t, which is allocated with the shape and dtype the case needs: the file's
 * dtype and shape must be exactly those (C order). Returns 0, or -1 with the mismatch or the
 * malformation in err (naming the file). */
int kb_npy_read(const char *path, kb_tensor *t, char *err, size_t errlen);

#endif

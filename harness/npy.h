/* NumPy .npy (format 1.0) writer, so anyone can check a kernel's inputs and outputs in Python. */
#ifndef KB_NPY_H
#define KB_NPY_H

#include "kbench.h"

/* Writes t to path atomically (a temporary file renamed into place). Returns 0 or -1. */
int kb_npy_write(const char *path, const kb_tensor *t);

#endif

/* --dump and --load: a case's tensors as NumPy files with a manifest that says what each is.
 *
 * DIR/NNN_FAMILY_SHAPE/ (NNN: the case's place in the run, SHAPE: its parameters)
 *   manifest.json               the family, parameters, seeds, input distribution, every file's
 *                               role, dtype and true element type, every row's tolerance,
 *                               errors and status
 *   in_NAME.npy                 the inputs (packed weights as their raw bytes or words)
 *   ref_NAME.npy                the reference's outputs (the definition, double accumulation,
 *                               rounded to the output type): what every row is checked against
 *   out_IMPL_tTHREADS_NAME.npy  an implementation's outputs, from its checked run
 * --load DIR reads in_NAME.npy of each case from DIR (a case folder, or a dump root holding one
 * folder per case, found by family and shape) instead of generating them. */
#ifndef KB_DUMP_H
#define KB_DUMP_H

#include "runner.h"

/* The case's folder name: NNN_FAMILY_SHAPE (shape with '_' between its key=value pairs). */
void kb_dump_dir_name(int case_idx, const kb_case *c, char *buf, size_t n);
/* Writes prefix + tensor name + ".npy" for each tensor; returns the number that failed. */
int kb_dump_tensors(const char *dir, const char *prefix, const kb_tensor *t, int nt);
/* manifest.json of a case (rows: the case's result rows). Returns 0 or -1. */
int kb_dump_manifest(const char *dir, const kb_options *o, const kb_case *c, uint64_t case_seed,
                     const kb_tensor *in, int n_in, const kb_tensor *out, int n_out,
                     const kb_result *rows, int nrows);
/* Reads each input of case c from in_NAME.npy under dir (see above). Returns 0 or -1 with err. */
int kb_load_inputs(const char *dir, const kb_case *c, kb_tensor *in, int n_in, char *err,
                   size_t errlen);

#endif

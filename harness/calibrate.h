/* The machine's ceilings: streaming read/copy/triad bandwidth per thread count, peak f32 FMA rate
 * per ISA, Vulkan read bandwidth. `kbench calibrate` measures and stores them (a JSON under
 * results/, keyed by machine); every run then reports each row's share of them. */
#ifndef KB_CALIBRATE_H
#define KB_CALIBRATE_H

#include "runner.h"

#define KB_CAL_MAX_THREADS 256

typedef struct kb_peaks {
    double read_gbps[KB_CAL_MAX_THREADS + 1]; /* by thread count; 0 = unknown */
    double copy_gbps[KB_CAL_MAX_THREADS + 1];
    double triad_gbps[KB_CAL_MAX_THREADS + 1];
    double fma_gflops_1t_avx2, fma_gflops_1t_avx512, fma_gflops_1t_scalar; /* one thread */
    double vk_read_gbps, vk_copy_gbps, vk_fma_gflops, vk_fma16_gflops; /* f32, f16 FMA */
    char vk_device[256];
    char source[512]; /* the calibration file, or "measured at start of this run" */
} kb_peaks;

/* results/calibration-<cpu>-<cores>c-<machine hash>.json for this machine (in the source tree). */
void kb_calibration_path(char *buf, size_t n);
/* Measures everything and writes path (whole or not at all). Returns 0 or -1. */
int kb_calibrate(const kb_options *o, const char *path, kb_peaks *pk);
/* Loads a calibration file made on this machine. Returns 0; -1 when missing or unreadable;
 * -2 when it was made on another machine (its key differs from kb_sysinfo's machine_key), so
 * its ceilings would make every %bw wrong. why: the reason, for the user. */
int kb_calibration_load(const char *path, kb_peaks *pk, char *why, size_t whylen);
/* Fills the gaps in pk by measuring read bandwidth now, before the run: CPU at each of o's
 * thread counts, Vulkan when vk. */
void kb_peaks_measure(const kb_options *o, int vk, kb_peaks *pk);
/* pct_peak_bw and pct_peak_flops of a timed row; a %bw above 110% is flagged in its message. */
void kb_peaks_apply_row(const kb_peaks *pk, kb_result *x);
void kb_peaks_apply(const kb_peaks *pk, kb_results *res);

#endif

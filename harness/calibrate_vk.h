/* Vulkan ceilings for kbench calibrate: copy bandwidth and peak f32 FMA rate of a device. */
#ifndef KB_CALIBRATE_VK_H
#define KB_CALIBRATE_VK_H

#include <stddef.h>

struct kb_vk;
/* Best of several runs, GPU-timed. Returns 0, or -1 with err. */
int kb_calibrate_vk(struct kb_vk *vk, double *copy_gbps, double *fma_gflops, char *err,
                    size_t errlen);

/* Peak f16 FMA GFLOP/s; 0 with err when the device has no shaderFloat16, -1 on failure. */
double kb_calibrate_vk_f16(struct kb_vk *vk, char *err, size_t errlen);
/* Keeps the GPU busy for `seconds` (no-op on CPU devices) so timing starts at full clock. */
int kb_vk_warm(struct kb_vk *vk, double seconds, char *err, size_t errlen);

#endif

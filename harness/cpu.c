/* CPU features from cpuid and xgetbv: which ISA implementations can run here. */
#include "kbench.h"

#include <cpuid.h>
#include <string.h>

#if defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static kb_cpu_features feat;

static void detect(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    feat.stepping = (int)(a & 0xF);
    feat.family = (int)((a >> 8) & 0xF);
    feat.model = (int)((a >> 4) & 0xF);
    if (feat.family == 0xF)
        feat.family += (int)((a >> 20) & 0xFF);
    if (feat.family == 0x6 || feat.family >= 0xF)
        feat.model += (int)(((a >> 16) & 0xF) << 4);
    int osxsave = (c >> 27) & 1;
    int fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_os = (xcr0 & 6) == 6;
    int zmm_os = (xcr0 & 0xE6) == 0xE6;
    unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0;
    if (__get_cpuid_max(0, 0) >= 7) {
        __cpuid_count(7, 0, a, b7, c7, d7);
        __cpuid_count(7, 1, a71, b, c, d);
    }
    feat.fma = fma && ymm_os;
    feat.f16c = f16c && ymm_os;
    feat.avx2 = avx && ymm_os && ((b7 >> 5) & 1);
    feat.avx512f = zmm_os && ((b7 >> 16) & 1);
    feat.avx512bw = feat.avx512f && ((b7 >> 30) & 1);
    feat.avx512vl = feat.avx512f && ((b7 >> 31) & 1);
    feat.avx512vnni = feat.avx512f && ((c7 >> 11) & 1);
    feat.avx512bf16 = feat.avx512f && ((a71 >> 5) & 1);
    feat.avxvnni = ymm_os && ((a71 >> 4) & 1);
    feat.amx_int8 = (d7 >> 25) & 1;
    feat.amx_bf16 = (d7 >> 22) & 1;
    if (feat.amx_int8 && ((xcr0 >> 17) & 3) == 3) /* Linux also needs a permission request */
        feat.amx_os = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    unsigned brand[12];
    if ((unsigned)__get_cpuid_max(0x80000000, 0) >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++)
            __cpuid(0x80000002 + i, brand[4 * i], brand[4 * i + 1], brand[4 * i + 2],
                    brand[4 * i + 3]);
        memcpy(feat.brand, brand, 48);
        feat.brand[48] = 0;
        /* trim leading and trailing spaces */
        char *s = feat.brand;
        while (*s == ' ')
            s++;
        memmove(feat.brand, s, strlen(s) + 1);
        size_t n = strlen(feat.brand);
        while (n && feat.brand[n - 1] == ' ')
            feat.brand[--n] = 0;
    }
#endif
}

const kb_cpu_features *kb_cpu(void)
{
    static int done;
    if (!done) {
        detect();
        done = 1;
    }
    return &feat;
}

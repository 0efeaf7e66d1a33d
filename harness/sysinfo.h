/* Machine facts for every report: CPU, caches and cores (hwloc), memory, OS, build. */
#ifndef KB_SYSINFO_H
#define KB_SYSINFO_H

#include <stddef.h>

typedef struct kb_sysinfo {
    char cpu[64];
    char flags[160]; /* the ISA features kbench cares about */
    int cores, pus;
    size_t l2_bytes, llc_bytes, mem_bytes, mem_avail_bytes;
    char os[128], hostname[64], compiler[64], commit[32];
    int numa_nodes;
    /* What a calibration is valid for: CPU model (brand, family/model/stepping), cores, NUMA
     * nodes and their memory (hwloc, rounded to GiB), LLC size; and its FNV-1a hash (hex). */
    char machine_key[256];
    char machine_hash[17];
} kb_sysinfo;

const kb_sysinfo *kb_sysinfo_get(void);

#endif

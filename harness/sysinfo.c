#include "sysinfo.h"

#include <hwloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kb_version.h" /* KB_GIT_COMMIT, written at build time */
#include "kbench.h"

static kb_sysinfo info;

static void add_flag(int on, const char *name)
{
    if (!on)
        return;
    size_t n = strlen(info.flags);
    snprintf(info.flags + n, sizeof info.flags - n, "%s%s", n ? " " : "", name);
}

static size_t meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    size_t kb = 0, klen = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            sscanf(line + klen + 1, "%zu", &kb);
            break;
        }
    fclose(f);
    return kb * 1024;
}

static void detect(void)
{
    const kb_cpu_features *c = kb_cpu();
    snprintf(info.cpu, sizeof info.cpu, "%s", c->brand[0] ? c->brand : "unknown CPU");
    add_flag(c->avx2, "avx2");
    add_flag(c->fma, "fma");
    add_flag(c->f16c, "f16c");
    add_flag(c->avxvnni, "avxvnni");
    add_flag(c->avx512f, "avx512f");
    add_flag(c->avx512bw, "avx512bw");
    add_flag(c->avx512vnni, "avx512vnni");
    add_flag(c->avx512bf16, "avx512bf16");
    add_flag(c->amx_int8 && c->amx_os, "amx-int8");
    add_flag(c->amx_bf16 && c->amx_os, "amx-bf16");

    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) == 0 && hwloc_topology_load(topo) == 0) {
        info.cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
        info.pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
        for (hwloc_obj_type_t t = HWLOC_OBJ_L1CACHE; t <= HWLOC_OBJ_L5CACHE; t++) {
            hwloc_obj_t o = hwloc_get_obj_by_type(topo, t, 0);
            if (!o || !o->attr)
                continue;
            size_t sz = (size_t)o->attr->cache.size;
            if (t == HWLOC_OBJ_L2CACHE)
                info.l2_bytes = sz;
            /* last level: total over all instances (several L3 slices on big parts) */
            int n = hwloc_get_nbobjs_by_type(topo, t);
            info.llc_bytes = sz * (size_t)(n > 0 ? n : 1);
        }
        info.numa_nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
        char mem[96] = "";
        for (int i = 0; i < info.numa_nodes && i < 8; i++) {
            hwloc_obj_t o = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
            size_t n = strlen(mem);
            snprintf(mem + n, sizeof mem - n, "%s%.0f", i ? "+" : "",
                     o ? (double)o->attr->numanode.local_memory / (1 << 30) : 0.0);
        }
        snprintf(info.machine_key, sizeof info.machine_key, "%s|%d.%d.%d|cores %d|pus %d|numa %s GiB|llc %zu",
                 c->brand[0] ? c->brand : "unknown CPU", c->family, c->model, c->stepping,
                 info.cores, info.pus, mem, info.llc_bytes);
        hwloc_topology_destroy(topo);
    }
    if (!info.machine_key[0])
        snprintf(info.machine_key, sizeof info.machine_key, "%s|%d.%d.%d|unknown topology",
                 c->brand[0] ? c->brand : "unknown CPU", c->family, c->model, c->stepping);
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *k = info.machine_key; *k; k++)
        h = (h ^ (unsigned char)*k) * 0x100000001b3ull;
    snprintf(info.machine_hash, sizeof info.machine_hash, "%016llx", (unsigned long long)h);
    if (info.cores <= 0)
        info.cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (info.llc_bytes == 0)
        info.llc_bytes = 32u << 20; /* unknown: assume a large L3 so rotation errs on cold */
    info.mem_bytes = meminfo("MemTotal");
    info.mem_avail_bytes = meminfo("MemAvailable");
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(info.os, sizeof info.os, "%s %s %s", u.sysname, u.release, u.machine);
    gethostname(info.hostname, sizeof info.hostname - 1);
    snprintf(info.compiler, sizeof info.compiler, "%s", KB_COMPILER);
    snprintf(info.commit, sizeof info.commit, "%s", KB_GIT_COMMIT);
}

const kb_sysinfo *kb_sysinfo_get(void)
{
    static int done;
    if (!done) {
        detect();
        done = 1;
    }
    return &info;
}

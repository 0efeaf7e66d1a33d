/* libFuzzer target: the suite parser (kb_suite_load on the whole input as a file, so NUL bytes,
 * long lines and every byte reach it) and the --shape parser (each line of the input as a shape
 * spec for every family: kb_shape_filter, kb_shape_parse, kb_shape_match), under ASan+UBSan.
 * Built by the `fuzz` preset (clang); `ctest --preset fuzz` runs it for 60 s on suites/. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kbench.h"
#include "suite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void shape_specs(const uint8_t *data, size_t size)
{
    char spec[KB_MAX_LINE + 1], err[512], part[1024];
    size_t i = 0;
    while (i < size) {
        size_t n = 0;
        while (i < size && data[i] != '\n' && n < sizeof spec - 1)
            spec[n++] = (char)data[i++];
        spec[n] = 0;
        while (i < size && data[i] != '\n')
            i++;
        i++;
        for (int f = 0; f < kb_family_count(); f++) {
            const kb_family *fam = kb_family_at(f);
            unsigned used = 0;
            if (kb_shape_filter(fam, spec, part, sizeof part, &used, err, sizeof err) < 0)
                continue;
            kb_case_list cl = {0};
            if (part[0] && kb_shape_parse(fam, part, &cl, err, sizeof err) == 0)
                for (int k = 0; k < cl.n && k < 64; k++)
                    kb_shape_match(&cl.v[k], spec, err, sizeof err);
            kb_case_list_free(&cl);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("suite", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    kb_case_list cl = {0};
    char err[600];
    if (kb_suite_load(path, &cl, err, sizeof err) == 0) {
        char shape[256];
        for (int k = 0; k < cl.n && k < 64; k++) /* every case formats and checks */
            kb_case_format(&cl.v[k], shape, sizeof shape);
    }
    kb_case_list_free(&cl);
    shape_specs(data, size);
    return 0;
}

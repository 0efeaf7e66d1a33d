/* Running the real kbench binary (KBENCH from ctest) from a test: its exit status and output. */
#ifndef KB_TEST_CLI_H
#define KB_TEST_CLI_H

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kbtest.h"

static char out[1 << 16]; /* the last run's stdout and stderr */

/* Runs kbench with args (a shell fragment); returns its exit status (-1 when it died on a
 * signal). */
static inline int kbench(const char *args)
{
    const char *bin = getenv("KBENCH");
    if (!bin)
        bin = "./kbench";
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    if (WIFSIGNALED(st))
        return -1;
    return WEXITSTATUS(st);
}

static inline void expect(const char *args, int code, const char *needle)
{
    int rc = kbench(args);
    if (rc != code || (needle && !strstr(out, needle)))
        fail_msg("kbench %s: exit %d (want %d), output:\n%s\n(want it to mention '%s')", args, rc,
                 code, out, needle ? needle : "");
}

#endif

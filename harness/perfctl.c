#include "perfctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ctl_fd = -1, ack_fd = -1;

int kb_perfctl_open(const char *spec, char *err, unsigned long errlen)
{
    char ctl[1024], *ack;
    snprintf(ctl, sizeof ctl, "%s", spec);
    ack = strchr(ctl, ',');
    if (ack)
        *ack++ = 0;
    /* perf's control channel is a FIFO: a regular file would be overwritten by the commands */
    const char *names[2] = {ctl, ack && *ack ? ack : NULL};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (!names[i])
            continue;
        if (stat(names[i], &st) != 0) {
            snprintf(err, errlen, "--perf-ctl: cannot open %s: %s", names[i], strerror(errno));
            return -1;
        }
        if (!S_ISFIFO(st.st_mode)) {
            snprintf(err, errlen, "--perf-ctl: %s is not a FIFO (make it with mkfifo; "
                                  "scripts/perf-kernel.sh does)", names[i]);
            return -1;
        }
    }
    /* opening a FIFO waits for its other end: perf opens both when it starts */
    ctl_fd = open(ctl, O_WRONLY | O_CLOEXEC);
    if (ctl_fd < 0) {
        snprintf(err, errlen, "--perf-ctl: cannot open %s: %s", ctl, strerror(errno));
        return -1;
    }
    if (ack && *ack) {
        ack_fd = open(ack, O_RDONLY | O_CLOEXEC);
        if (ack_fd < 0) {
            snprintf(err, errlen, "--perf-ctl: cannot open %s: %s", ack, strerror(errno));
            close(ctl_fd);
            ctl_fd = -1;
            return -1;
        }
    }
    return 0;
}

int kb_perfctl_active(void) { return ctl_fd >= 0; }

static void command(const char *cmd)
{
    if (ctl_fd < 0)
        return;
    size_t n = strlen(cmd);
    if (write(ctl_fd, cmd, n) != (ssize_t)n)
        return;
    if (ack_fd >= 0) { /* perf answers "ack\n" (and a NUL) once the command took effect */
        char buf[16];
        ssize_t r = read(ack_fd, buf, sizeof buf);
        (void)r;
    }
}

void kb_perfctl_enable(void) { command("enable\n"); }
void kb_perfctl_disable(void) { command("disable\n"); }

void kb_perfctl_close(void)
{
    if (ctl_fd >= 0)
        close(ctl_fd);
    if (ack_fd >= 0)
        close(ack_fd);
    ctl_fd = ack_fd = -1;
}

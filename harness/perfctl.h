/* perf's control-FIFO protocol (perf record --control fifo:CTL[,ACK] -D -1): kbench writes
 * "enable" before each timed region and "disable" after it, so a profile holds only kernels. */
#ifndef KB_PERFCTL_H
#define KB_PERFCTL_H

/* spec "CTL[,ACK]": paths of FIFOs perf also opens. Returns 0, or -1 with a message in err. */
int kb_perfctl_open(const char *spec, char *err, unsigned long errlen);
int kb_perfctl_active(void);
void kb_perfctl_enable(void);
void kb_perfctl_disable(void);
void kb_perfctl_close(void);

#endif

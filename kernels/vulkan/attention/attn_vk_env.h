/* KB_VK_ATTN_SPLITS, read by both Vulkan decode implementations (vk, vk_cm). */
#ifndef KB_ATTN_VK_ENV_H
#define KB_ATTN_VK_ENV_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Sets *want to KB_VK_ATTN_SPLITS when it is set (a whole number from 1 to 65535), leaves it
 * alone when unset; -1 with a message when it is malformed (never silently ignored: a tuning
 * run must not time the default under another name). */
static inline int kb_vk_attn_env_splits(uint64_t *want, char *err, size_t errlen)
{
    const char *e = getenv("KB_VK_ATTN_SPLITS");
    if (!e)
        return 0;
    char *end;
    errno = 0;
    const long n = strtol(e, &end, 10);
    if (end == e || *end || errno || n < 1 || n > 65535) {
        snprintf(err, errlen, "KB_VK_ATTN_SPLITS=%s: want a whole number from 1 to 65535", e);
        return -1;
    }
    *want = (uint64_t)n;
    return 0;
}

#endif

#include "fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *kb_tmpfile_for(const char *path, char *tmp, size_t n)
{
    size_t len = strlen(path);
    struct stat st;
    int exists = len && stat(path, &st) == 0;
    if (len == 0 || path[len - 1] == '/' || (exists && S_ISDIR(st.st_mode))) {
        errno = len == 0 ? ENOENT : EISDIR;
        return NULL;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        /* a device or a FIFO (/dev/null, /dev/stdout, a pipe): written in place, never replaced
         * by a rename */
        if (n)
            tmp[0] = 0;
        return fopen(path, "w");
    }
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    if ((size_t)snprintf(tmp, n, "%.*s.%s.XXXXXX", dirlen, path, slash ? slash + 1 : path) >= n) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    int fd = mkstemp(tmp);
    if (fd < 0)
        return NULL;
    fchmod(fd, 0644); /* mkstemp makes 0600: a result file is for sharing */
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
    }
    return f;
}

int kb_tmpfile_commit(FILE *f, const char *tmp, const char *path)
{
    int ok = fflush(f) == 0 && !ferror(f);
    int e = errno;
    ok = fclose(f) == 0 && ok;
    if (!tmp[0]) /* written in place (kb_tmpfile_for: not a regular file) */
        return ok ? 0 : (errno = e ? e : EIO, -1);
    if (ok && rename(tmp, path) == 0)
        return 0;
    if (ok)
        e = errno;
    unlink(tmp);
    errno = e ? e : EIO;
    return -1;
}

void kb_tmpfile_abandon(FILE *f, const char *tmp)
{
    fclose(f);
    if (tmp[0])
        unlink(tmp);
}

int kb_check_writable(const char *path, char *err, size_t errlen)
{
    char tmp[4200];
    struct stat st;
    if (path[0] && stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        if (access(path, W_OK) == 0) /* a device or FIFO: opening it now could block */
            return 0;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    FILE *f = kb_tmpfile_for(path, tmp, sizeof tmp);
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path[0] ? path : "''", strerror(errno));
        return -1;
    }
    kb_tmpfile_abandon(f, tmp);
    return 0;
}

int kb_check_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (!dir[0]) {
        snprintf(err, errlen, "an empty directory name");
        return -1;
    }
    if (stat(dir, &st) != 0) {
        if (mkdir(dir, 0777) != 0) {
            snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
            return -1;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot write into %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

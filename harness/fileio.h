/* Result files written whole or not at all: a unique temporary file beside the target (mkstemp,
 * so no existing file is ever overwritten or removed but the target), renamed over it at the
 * end; and a check, before a long run, that the target can be written. */
#ifndef KB_FILEIO_H
#define KB_FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* Opens a new temporary file in path's directory (".NAME.XXXXXX"); its name goes to tmp.
 * Where path exists and is not a regular file (/dev/null, /dev/stdout, a FIFO) it is opened
 * itself and tmp is "": a rename must never replace a device. NULL with errno set when it
 * cannot (also when path is empty or names a directory). */
FILE *kb_tmpfile_for(const char *path, char *tmp, size_t n);
/* Closes f and renames tmp to path; on any error removes tmp and returns -1 with errno. */
int kb_tmpfile_commit(FILE *f, const char *tmp, const char *path);
/* Closes f and removes tmp (an abandoned write). */
void kb_tmpfile_abandon(FILE *f, const char *tmp);
/* 0 when a file can be written at path (a temporary file is created and removed), else -1
 * with the reason in err. */
int kb_check_writable(const char *path, char *err, size_t errlen);
/* 0 when dir exists as a writable directory or can be created (one level), else -1 with err. */
int kb_check_dir(const char *dir, char *err, size_t errlen);

#endif

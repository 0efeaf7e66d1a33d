#include "npy.h"

#include <stdio.h>
#include <string.h>

#include "fileio.h"

static const char *descr(kb_dtype t)
{
    switch (t) {
    case KB_F32: return "<f4";
    case KB_F64: return "<f8";
    case KB_F16: return "<f2";
    case KB_BF16: return "<u2"; /* numpy has no bf16: raw bits, f32 = bits << 16 */
    case KB_I8: return "|i1";
    case KB_U8: return "|u1";
    case KB_I32: return "<i4";
    }
    return "|u1";
}

int kb_npy_write(const char *path, const kb_tensor *t)
{
    char hdr[256], shape[128] = "";
    for (int i = 0; i < t->ndim; i++) {
        size_t n = strlen(shape);
        snprintf(shape + n, sizeof shape - n, "%lld%s", (long long)t->shape[i],
                 t->ndim == 1 ? "," : (i + 1 < t->ndim ? ", " : ""));
    }
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                       descr(t->dtype), shape);
    /* magic(6) + version(2) + header length(2) + header, padded with spaces to 64, ends in \n */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    char tmp[4200];
    FILE *f = kb_tmpfile_for(path, tmp, sizeof tmp);
    if (!f)
        return -1;
    unsigned short hlen = (unsigned short)(len + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xFF), (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)len, f) == (size_t)len;
    for (int i = 0; i < pad && ok; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(t->data, 1, t->bytes, f) == t->bytes;
    if (!ok) {
        kb_tmpfile_abandon(f, tmp);
        return -1;
    }
    return kb_tmpfile_commit(f, tmp, path);
}

#include "npy.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

const char *kb_npy_descr(kb_dtype t)
{
    switch (t) {
    case KB_F32: return "<f4";
    case KB_F64: return "<f8";
    case KB_F16: return "<f2";
    case KB_BF16: return "<u2"; /* numpy has no bf16: raw bits, f32 = bits << 16 */
    case KB_I8: return "|i1";
    case KB_U8: return "|u1";
    case KB_I32: return "<i4";
    case KB_U32: return "<u4";
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
                       kb_npy_descr(t->dtype), shape);
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

int kb_npy_read(const char *path, kb_tensor *t, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char pre[12];
    char hdr[4096];
    int rc = -1;
    size_t hl = 0, pre_n = 10;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        snprintf(err, errlen, "%s: not a .npy file", path);
        goto out;
    }
    if (pre[6] == 1) {
        hl = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) { /* 4-byte header length */
        if (fread(pre + 10, 1, 2, f) != 2)
            goto trunc;
        hl = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        pre_n = 12;
    } else {
        snprintf(err, errlen, "%s: .npy version %d is not known", path, pre[6]);
        goto out;
    }
    if (hl >= sizeof hdr) {
        snprintf(err, errlen, "%s: header of %zu bytes is too long", path, hl);
        goto out;
    }
    if (fread(hdr, 1, hl, f) != hl)
        goto trunc;
    hdr[hl] = 0;
    /* {'descr': '<f4', 'fortran_order': False, 'shape': (3, 18), } in any key order */
    char descr[16] = "";
    const char *d = strstr(hdr, "'descr'");
    if (!d || sscanf(d, "'descr': '%15[^']'", descr) != 1) {
        snprintf(err, errlen, "%s: no descr in the header", path);
        goto out;
    }
    const char *want = kb_npy_descr(t->dtype);
    /* numpy writes one-byte types as |u1, |i1; accept <u1 and =u1 spellings too */
    if (strcmp(descr + 1, want + 1) != 0 || (descr[0] != want[0] && descr[0] != '|' && descr[0] != '=')) {
        snprintf(err, errlen, "%s: dtype %s, the case needs %s (%s%s%s)", path, descr, want,
                 kb_dtype_name(t->dtype), t->elem[0] ? ": " : "", t->elem);
        goto out;
    }
    const char *fo = strstr(hdr, "'fortran_order'");
    if (!fo || strncmp(fo + 15, ": False", 7) != 0) {
        snprintf(err, errlen, "%s: only C-order arrays are read (fortran_order must be False)", path);
        goto out;
    }
    const char *sh = strstr(hdr, "'shape'");
    const char *lp = sh ? strchr(sh, '(') : NULL;
    if (!lp) {
        snprintf(err, errlen, "%s: no shape in the header", path);
        goto out;
    }
    int64_t dims[8];
    int nd = 0;
    const char *q = lp + 1;
    while (*q && *q != ')') {
        while (*q == ' ' || *q == ',')
            q++;
        if (*q == ')')
            break;
        char *end;
        long long v = strtoll(q, &end, 10);
        if (end == q || v < 0 || nd == 8) {
            snprintf(err, errlen, "%s: malformed shape", path);
            goto out;
        }
        dims[nd++] = v;
        q = end;
    }
    char got[128] = "", need[128] = "";
    for (int i = 0; i < nd; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "x" : "", (long long)dims[i]);
    for (int i = 0; i < t->ndim; i++)
        snprintf(need + strlen(need), sizeof need - strlen(need), "%s%lld", i ? "x" : "",
                 (long long)t->shape[i]);
    if (nd != t->ndim || memcmp(dims, t->shape, sizeof(int64_t) * (size_t)nd) != 0) {
        snprintf(err, errlen, "%s: shape %s, the case needs %s", path, nd ? got : "()", need);
        goto out;
    }
    if (fread(t->data, 1, t->bytes, f) != t->bytes)
        goto trunc;
    if (fgetc(f) != EOF) {
        snprintf(err, errlen, "%s: data continues past %s elements of %s", path, need, descr);
        goto out;
    }
    (void)pre_n;
    rc = 0;
    goto out;
trunc:
    snprintf(err, errlen, "%s: truncated", path);
out:
    fclose(f);
    return rc;
}

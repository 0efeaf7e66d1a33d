#include "suite.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#define MAX_VALUES 64

typedef struct {
    char key[32];
    int64_t v[MAX_VALUES];
    int n;
} kv_list;

void kb_case_list_free(kb_case_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int push(kb_case_list *l, const kb_case *c)
{
    if (l->n >= KB_MAX_CASES)
        return -2;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        kb_case *v = realloc(l->v, sizeof(kb_case) * (size_t)cap);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *c;
    return 0;
}

static int param_index(const kb_family *f, const char *key)
{
    for (int i = 0; i < f->nparams; i++)
        if (strcmp(f->params[i].name, key) == 0)
            return i;
    return -1;
}

static void param_names(const kb_family *f, char *buf, size_t n)
{
    buf[0] = 0;
    for (int i = 0; i < f->nparams; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", i ? ", " : "", f->params[i].name);
    }
}

int kb_case_check(const kb_case *c, char *err, size_t errlen)
{
    const kb_family *f = c->fam;
    for (int i = 0; i < f->nparams; i++) {
        const kb_param_def *d = &f->params[i];
        if (c->p[i] < d->min || c->p[i] > d->max) {
            snprintf(err, errlen, "%s: %s=%lld is out of range [%lld, %lld]", f->name, d->name,
                     (long long)c->p[i], (long long)d->min, (long long)d->max);
            return -1;
        }
    }
    if (f->validate && f->validate(c->p, err, errlen) != 0) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s: %s", f->name, err);
        snprintf(err, errlen, "%s", tmp);
        return -1;
    }
    return 0;
}

void kb_case_format(const kb_case *c, char *buf, size_t n)
{
    buf[0] = 0;
    for (int i = 0; i < c->fam->nparams; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s=%lld", i ? " " : "", c->fam->params[i].name,
                 (long long)c->p[i]);
    }
}

/* Parses "1,2,4" into v. Returns count or -1. */
static int parse_values(const char *s, int64_t *v, int max, char *err, size_t errlen,
                        const char *key)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        if (n == max) {
            snprintf(err, errlen, "%s: more than %d values", key, max);
            return -1;
        }
        errno = 0;
        char *end;
        if (!isdigit((unsigned char)*p) && *p != '-') {
            snprintf(err, errlen, "%s=%s: '%s' is not an integer", key, s, p);
            return -1;
        }
        long long x = strtoll(p, &end, 10);
        if (errno == ERANGE) {
            snprintf(err, errlen, "%s=%s: value out of range", key, s);
            return -1;
        }
        if (end == p || (*end != ',' && *end != 0)) {
            snprintf(err, errlen, "%s=%s: '%s' is not an integer", key, s, p);
            return -1;
        }
        int dup = 0; /* rows=7,7 sweeps 7 once */
        for (int i = 0; i < n; i++)
            dup |= v[i] == x;
        if (!dup)
            v[n++] = x;
        if (*end == 0)
            break;
        p = end + 1;
    }
    return n;
}

/* Expands the cartesian product of kv lists over base into out. */
static int expand(const kb_case *base, const kv_list *kv, const int *idx, int nkv,
                  kb_case_list *out, char *err, size_t errlen)
{
    long long total = 1;
    for (int i = 0; i < nkv; i++) {
        total *= kv[i].n;
        if (total > KB_MAX_CASES_PER_LINE) {
            snprintf(err, errlen, "the sweep expands to more than %d cases",
                     KB_MAX_CASES_PER_LINE);
            return -1;
        }
    }
    for (long long k = 0; k < total; k++) {
        kb_case c = *base;
        long long r = k;
        for (int i = nkv - 1; i >= 0; i--) { /* last key varies fastest */
            c.p[idx[i]] = kv[i].v[r % kv[i].n];
            r /= kv[i].n;
        }
        if (kb_case_check(&c, err, errlen) != 0)
            return -1;
        int rc = push(out, &c);
        if (rc != 0) {
            if (rc == -2)
                snprintf(err, errlen, "more than %d cases in all: select fewer (a suite's lines, "
                                      "--shape, --kernel)", KB_MAX_CASES);
            else
                snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static void defaults(kb_case *c, const kb_family *f)
{
    memset(c, 0, sizeof *c);
    c->fam = f;
    for (int i = 0; i < f->nparams; i++)
        c->p[i] = f->params[i].def;
}

/* Copies a label, cut to fit on a UTF-8 character boundary (a cut character would make the CSV
 * and JSON invalid UTF-8). */
static void copy_label(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n) {
        len = n - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
            len--; /* src[len] continues a character: cut before the character's first byte */
    }
    memcpy(dst, src, len);
    dst[len] = 0;
}

int kb_suite_parse_line(const char *line, kb_case_list *out, char *err, size_t errlen)
{
    char buf[KB_MAX_LINE + 2];
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len > KB_MAX_LINE) {
        snprintf(err, errlen, "line too long (%zu characters; at most %d)", len, KB_MAX_LINE);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", line);
    char *hash = strchr(buf, '#');
    if (hash)
        *hash = 0;
    char *save = NULL;
    char *tok = strtok_r(buf, " \t\r\n", &save);
    if (!tok)
        return 0; /* blank or comment */
    const kb_family *f = kb_family_find(tok);
    if (!f) {
        snprintf(err, errlen, "unknown family '%s' (kbench --list shows them)", tok);
        return -1;
    }
    kb_case base;
    defaults(&base, f);
    kv_list kv[KB_MAX_PARAMS];
    int idx[KB_MAX_PARAMS], nkv = 0;
    while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || eq[1] == 0) {
            snprintf(err, errlen, "'%s' is not key=value", tok);
            return -1;
        }
        *eq = 0;
        const char *key = tok, *val = eq + 1;
        if (strcmp(key, "label") == 0) {
            if (base.label[0]) {
                snprintf(err, errlen, "label given twice");
                return -1;
            }
            copy_label(base.label, sizeof base.label, val);
            continue;
        }
        if (strcmp(key, "tag") == 0) {
            char tags[256], *ts = NULL;
            snprintf(tags, sizeof tags, "%s", val);
            for (char *t = strtok_r(tags, ",", &ts); t; t = strtok_r(NULL, ",", &ts)) {
                if (strcmp(t, "quick") != 0) {
                    snprintf(err, errlen, "unknown tag '%s' (tags: quick)", t);
                    return -1;
                }
                base.tags |= KB_TAG_QUICK;
            }
            continue;
        }
        int pi = param_index(f, key);
        if (pi < 0) {
            char names[256];
            param_names(f, names, sizeof names);
            snprintf(err, errlen, "%s has no parameter '%s' (it has: %s, label, tag)", f->name, key,
                     names);
            return -1;
        }
        for (int i = 0; i < nkv; i++)
            if (idx[i] == pi) {
                snprintf(err, errlen, "parameter '%s' given twice", key);
                return -1;
            }
        snprintf(kv[nkv].key, sizeof kv[nkv].key, "%s", key);
        kv[nkv].n = parse_values(val, kv[nkv].v, MAX_VALUES, err, errlen, key);
        if (kv[nkv].n < 0)
            return -1;
        idx[nkv++] = pi;
    }
    return expand(&base, kv, idx, nkv, out, err, errlen);
}

int kb_suite_load(const char *path, kb_case_list *out, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* one line at a time by bytes, so a NUL byte or an over-long line is seen, never cut */
    char line[KB_MAX_LINE + 2], e[512];
    int lineno = 1, rc = 0;
    size_t n = 0;
    int ch;
    for (;;) {
        ch = fgetc(fp);
        if (ch == 0) {
            snprintf(err, errlen, "%s:%d: a NUL byte (not a text file?)", path, lineno);
            rc = -1;
            break;
        }
        if (ch != EOF && ch != '\n') {
            if (n > KB_MAX_LINE) {
                snprintf(err, errlen, "%s:%d: line too long (at most %d characters)", path, lineno,
                         KB_MAX_LINE);
                rc = -1;
                break;
            }
            line[n++] = (char)ch;
            continue;
        }
        if (ch == EOF && ferror(fp)) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        line[n] = 0;
        if (kb_suite_parse_line(line, out, e, sizeof e) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, e);
            rc = -1;
            break;
        }
        if (ch == EOF)
            break;
        n = 0;
        lineno++;
    }
    fclose(fp);
    return rc;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

const char *kb_suite_dir(void)
{
    static const char *const dirs[] = {KB_SOURCE_DIR "/suites", "suites", KB_DATA_DIR "/suites"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        struct stat st;
        if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
            return dirs[i];
    }
    return NULL;
}

char *kb_suite_find(const char *name)
{
    char path[4096];
    if (strchr(name, '/') || strstr(name, ".suite"))
        return is_file(name) ? strdup(name) : NULL;
    const char *dir = kb_suite_dir();
    if (!dir)
        return NULL;
    snprintf(path, sizeof path, "%s/%s.suite", dir, name);
    return is_file(path) ? strdup(path) : NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The suite names of kb_suite_dir(), sorted; returns the count (names freed by the caller). */
static int suite_names(char ***names)
{
    *names = NULL;
    const char *dir = kb_suite_dir();
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 6 && strcmp(e->d_name + len - 6, ".suite") == 0 && e->d_name[0] != '.') {
            char **v = realloc(*names, sizeof(char *) * (size_t)(n + 1));
            if (!v)
                break;
            *names = v;
            v[n++] = strndup(e->d_name, len - 6);
        }
    }
    closedir(d);
    qsort(*names, (size_t)n, sizeof(char *), cmp_str);
    return n;
}

void kb_suite_list(FILE *f)
{
    char **names;
    int n = suite_names(&names);
    if (n == 0)
        fprintf(f, "  (no suites directory found)\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "  %-12s %s/%s.suite\n", names[i], kb_suite_dir(), names[i]);
        free(names[i]);
    }
    free(names);
}

int kb_suite_load_all(int quick_only, kb_case_list *out, char *err, size_t errlen)
{
    char **names;
    int n = suite_names(&names), rc = 0;
    if (n == 0) {
        snprintf(err, errlen, "no suites directory found");
        rc = -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.suite", kb_suite_dir(), names[i]);
        kb_case_list one = {0};
        if (rc == 0 && kb_suite_load(path, &one, err, errlen) != 0)
            rc = -1;
        for (int k = 0; rc == 0 && k < one.n; k++)
            if (!quick_only || (one.v[k].tags & KB_TAG_QUICK)) {
                int p = push(out, &one.v[k]);
                if (p != 0) {
                    snprintf(err, errlen, p == -2 ? "more than %d cases in all" : "out of memory",
                             KB_MAX_CASES);
                    rc = -1;
                }
            }
        kb_case_list_free(&one);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Splits "rows=1,7,cols=64" into kv lists: a token without '=' extends the previous key. */
static int split_spec(const char *spec, char keys[][32], char vals[][256], int max, char *err,
                      size_t errlen)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        char *eq = strchr(t, '=');
        if (eq) {
            if (n == max) {
                snprintf(err, errlen, "--shape: too many keys");
                return -1;
            }
            *eq = 0;
            if (!*t || !eq[1]) {
                snprintf(err, errlen, "--shape: '%s=%s' is not key=value", t, eq + 1);
                return -1;
            }
            snprintf(keys[n], 32, "%s", t);
            snprintf(vals[n], 256, "%s", eq + 1);
            n++;
        } else {
            if (n == 0) {
                snprintf(err, errlen, "--shape: '%s' is not key=value", t);
                return -1;
            }
            size_t len = strlen(vals[n - 1]);
            snprintf(vals[n - 1] + len, 256 - len, ",%s", t);
        }
    }
    if (n == 0) {
        snprintf(err, errlen, "--shape: empty");
        return -1;
    }
    return n;
}

int kb_shape_parse(const kb_family *f, const char *spec, kb_case_list *out, char *err,
                   size_t errlen)
{
    char keys[KB_MAX_PARAMS + 1][32], vals[KB_MAX_PARAMS + 1][256];
    int n = split_spec(spec, keys, vals, KB_MAX_PARAMS + 1, err, errlen);
    if (n < 0)
        return -1;
    char line[2048];
    snprintf(line, sizeof line, "%s", f->name);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, " %s=%s", keys[i], vals[i]);
    }
    return kb_suite_parse_line(line, out, err, errlen);
}

int kb_shape_match(const kb_case *c, const char *spec, char *err, size_t errlen)
{
    char keys[KB_MAX_PARAMS + 1][32], vals[KB_MAX_PARAMS + 1][256];
    int n = split_spec(spec, keys, vals, KB_MAX_PARAMS + 1, err, errlen);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        int pi = param_index(c->fam, keys[i]);
        if (pi < 0)
            continue;
        int64_t v[MAX_VALUES];
        int nv = parse_values(vals[i], v, MAX_VALUES, err, errlen, keys[i]);
        if (nv < 0)
            return -1;
        int hit = 0;
        for (int j = 0; j < nv; j++)
            hit |= v[j] == c->p[pi];
        if (!hit)
            return 0;
    }
    return 1;
}

int kb_shape_filter(const kb_family *f, const char *spec, char *out, size_t n, unsigned *used,
                    char *err, size_t errlen)
{
    char keys[KB_MAX_PARAMS * 2][32], vals[KB_MAX_PARAMS * 2][256];
    int nk = split_spec(spec, keys, vals, KB_MAX_PARAMS * 2, err, errlen);
    if (nk < 0)
        return -1;
    out[0] = 0;
    for (int i = 0; i < nk; i++) {
        if (param_index(f, keys[i]) < 0)
            continue;
        *used |= 1u << i;
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%s=%s", len ? "," : "", keys[i], vals[i]);
    }
    return nk;
}

void kb_shape_key(const char *spec, int i, char *out, size_t n)
{
    char keys[KB_MAX_PARAMS * 2][32], vals[KB_MAX_PARAMS * 2][256], err[64];
    int nk = split_spec(spec, keys, vals, KB_MAX_PARAMS * 2, err, sizeof err);
    snprintf(out, n, "%s", i < nk ? keys[i] : "?");
}

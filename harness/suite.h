/* Suite files and shape specs.
 * A suite line:  FAMILY key=value[,value...] ... [label=NAME] [tag=quick]   # comment
 * A list of values sweeps that parameter; several lists give their cartesian product.
 * Parameters not named take the family's default. */
#ifndef KB_SUITE_H
#define KB_SUITE_H

#include <stdio.h>

#include "kbench.h"

typedef struct kb_case_list {
    kb_case *v;
    int n, cap;
} kb_case_list;

#define KB_MAX_CASES_PER_LINE 4096
#define KB_MAX_CASES 100000 /* in all, over every line and suite of a run */
#define KB_MAX_LINE 1023    /* characters in a suite line or a --shape, without the newline */

void kb_case_list_free(kb_case_list *l);
/* Range and family checks of one case. Returns 0, or -1 with a message. */
int kb_case_check(const kb_case *c, char *err, size_t errlen);
/* "rows=4096 cols=4096 tokens=1" */
void kb_case_format(const kb_case *c, char *buf, size_t n);

/* Parses one suite line (comments and blank lines add nothing). Returns 0 or -1 with err. */
int kb_suite_parse_line(const char *line, kb_case_list *out, char *err, size_t errlen);
/* Loads a whole file; err starts with "FILE:LINE: ". */
int kb_suite_load(const char *path, kb_case_list *out, char *err, size_t errlen);
/* A suite by name (suites/NAME.suite next to the binary's sources or under ./suites) or path.
 * Returns a malloc'd path or NULL. */
char *kb_suite_find(const char *name);
/* Lists the suites found, one name per line. */
void kb_suite_list(FILE *f);
/* The directory the suites are read from (the source tree's, ./suites, or the installed
 * share/kbench/suites); NULL when none is found. */
const char *kb_suite_dir(void);
/* Loads every suite of kb_suite_dir() (sorted by name); only the cases tagged quick when
 * quick_only. Returns 0 or -1 with err. */
int kb_suite_load_all(int quick_only, kb_case_list *out, char *err, size_t errlen);

/* --shape "rows=1,7,cols=64": cases of family f (defaults elsewhere). */
int kb_shape_parse(const kb_family *f, const char *spec, kb_case_list *out, char *err,
                   size_t errlen);
/* The part of spec whose keys family f has, into out ("" when none). Bit i of *used is set
 * when the i-th key of spec is one of f's. Returns the number of keys in spec, or -1 with err. */
int kb_shape_filter(const kb_family *f, const char *spec, char *out, size_t n, unsigned *used,
                    char *err, size_t errlen);
/* The i-th key of spec (for messages). */
void kb_shape_key(const char *spec, int i, char *out, size_t n);
/* 1 when case c has, for every key the spec names that c's family has, one of its values.
 * Returns -1 with err when the spec is malformed. */
int kb_shape_match(const kb_case *c, const char *spec, char *err, size_t errlen);

#endif

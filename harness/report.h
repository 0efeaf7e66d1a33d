/* Reports: an aligned table for people, CSV for tools, JSON with samples and machine facts. */
#ifndef KB_REPORT_H
#define KB_REPORT_H

#include <stdio.h>

#include "runner.h"

void kb_report_header(FILE *f, const kb_results *r);
/* s as a JSON string, quoted and escaped. */
void kb_json_str(FILE *f, const char *s);
/* Row by row, for streaming: the column line, then one line per row. */
void kb_report_table_head(FILE *f);
void kb_report_table_row(FILE *f, const kb_result *x);
void kb_report_csv_head(FILE *f);
void kb_report_csv_row(FILE *f, const kb_result *x);
void kb_report_table(FILE *f, const kb_results *r);
void kb_report_csv(FILE *f, const kb_results *r);
/* Written to a temporary file and renamed: whole or not at all. Returns 0 or -1. */
int kb_report_json(const char *path, const kb_results *r, const kb_options *o, int argc,
                   char **argv);

#endif

#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double kb_percentile_sorted(const double *s, int n, double pct)
{
    if (n <= 0)
        return NAN;
    double pos = pct / 100.0 * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1)
        return s[n - 1];
    double f = pos - i;
    return s[i] + f * (s[i + 1] - s[i]);
}

void kb_stats_compute(const double *x, int n, kb_stats *st)
{
    memset(st, 0, sizeof *st);
    st->n = n;
    if (n <= 0) {
        st->median = st->min = st->max = st->p10 = st->p90 = st->mean = NAN;
        return;
    }
    double *s = malloc(sizeof(double) * (size_t)n);
    memcpy(s, x, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += s[i];
    st->mean = sum / n;
    st->min = s[0];
    st->max = s[n - 1];
    st->median = kb_percentile_sorted(s, n, 50);
    st->p10 = kb_percentile_sorted(s, n, 10);
    st->p90 = kb_percentile_sorted(s, n, 90);
    /* ranks n/2 -+ 1.96 sqrt(n)/2 (normal approximation to the binomial(n, 1/2)) */
    st->ci_lo = st->ci_hi = NAN;
    if (n >= 6) {
        double h = 1.96 * sqrt((double)n) / 2.0;
        int lo = (int)floor(n / 2.0 - h), hi = (int)ceil(n / 2.0 + h); /* 1-based ranks */
        if (lo < 1)
            lo = 1;
        if (hi > n)
            hi = n;
        st->ci_lo = s[lo - 1];
        st->ci_hi = s[hi - 1];
    }
    for (int i = 0; i < n; i++)
        s[i] = fabs(s[i] - st->median);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double mad = kb_percentile_sorted(s, n, 50);
    st->noise_pct = st->median > 0 ? 1.4826 * mad / st->median * 100.0 : 0;
    free(s);
}

double kb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

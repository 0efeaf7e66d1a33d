/* Sample statistics for timing: order statistics, robust noise, a confidence interval. */
#ifndef KB_STATS_H
#define KB_STATS_H

typedef struct kb_stats {
    int n;
    double median, min, max, p10, p90, mean;
    double noise_pct; /* 1.4826 * MAD / median * 100: a robust relative standard deviation */
    double ci_lo, ci_hi; /* 95% distribution-free confidence interval of the median (order
                            statistics); NAN below 6 samples, where none exists at 95% */
} kb_stats;

/* Does not modify x. n >= 1. */
void kb_stats_compute(const double *x, int n, kb_stats *s);
/* Percentile (0..100) of sorted data, linear interpolation. */
double kb_percentile_sorted(const double *sorted, int n, double pct);
double kb_now(void); /* monotonic seconds */

#endif

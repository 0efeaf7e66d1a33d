/* Top-K routing in double, as moe_ref.h defines it, and the comparison of kernel ids with it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "moe_ref.h"

int kb_moe_route_validate(const kb_moe_route *r, char *err, size_t errlen)
{
    if (r->K > r->E) {
        snprintf(err, errlen, "K=%d > E=%d: a token's K experts must be distinct", r->K, r->E);
        return -1;
    }
    if (r->mode != MOE_SIGMOID_GROUPED)
        return 0;
    if (r->E % r->groups != 0) {
        snprintf(err, errlen, "E=%d is not a multiple of groups=%d", r->E, r->groups);
        return -1;
    }
    if (r->E / r->groups < 2) {
        snprintf(err, errlen, "E=%d in groups=%d leaves fewer than 2 experts a group (a group's "
                 "score is its top 2)", r->E, r->groups);
        return -1;
    }
    if (r->topk_group > r->groups) {
        snprintf(err, errlen, "topk_group=%d > groups=%d", r->topk_group, r->groups);
        return -1;
    }
    if (r->K > r->topk_group * (r->E / r->groups)) {
        snprintf(err, errlen, "K=%d > topk_group=%d groups of %d experts", r->K, r->topk_group,
                 r->E / r->groups);
        return -1;
    }
    return 0;
}

void kb_moe_route_keys(const kb_moe_route *r, const float *l, const float *bias, double *sel,
                       double *wk)
{
    if (r->mode == MOE_SOFTMAX_TOPK) {
        double m = -INFINITY;
        for (int i = 0; i < r->E; i++)
            if (!isnan(l[i]) && l[i] > m)
                m = l[i];
        for (int i = 0; i < r->E; i++) {
            sel[i] = isnan(l[i]) ? -INFINITY : l[i];
            wk[i] = isnan(l[i]) || m == -INFINITY ? 0.0 : exp((double)l[i] - m);
        }
        return;
    }
    for (int i = 0; i < r->E; i++) {
        const double s = 1.0 / (1.0 + exp(-(double)l[i])); /* -inf: 0 */
        sel[i] = isnan(l[i]) ? -INFINITY : s + bias[i];
        wk[i] = isnan(l[i]) ? 0.0 : s;
    }
}

void kb_moe_group_scores(const kb_moe_route *r, const double *sel, double *gs)
{
    const int n = r->E / r->groups;
    for (int g = 0; g < r->groups; g++) {
        const double *v = sel + g * n;
        int a = 0;
        for (int i = 1; i < n; i++)
            if (v[i] > v[a])
                a = i;
        int b = a == 0 ? 1 : 0;
        for (int i = 0; i < n; i++)
            if (i != a && v[i] > v[b])
                b = i;
        gs[g] = v[a] + v[b]; /* -inf when either is */
    }
}

/* Index of the best of v[0..n) with use[i] set (ties: the lower index), or -1. */
static int best_of(const double *v, const int *use, int n)
{
    int b = -1;
    for (int i = 0; i < n; i++)
        if (use[i] && (b < 0 || v[i] > v[b]))
            b = i;
    return b;
}

void kb_moe_route_weights_for(const kb_moe_route *r, const double *wk, const int32_t *ids,
                              double *w)
{
    double sum = 0;
    if (r->mode == MOE_SOFTMAX_TOPK && !r->renorm) {
        for (int i = 0; i < r->E; i++)
            sum += wk[i];
    } else {
        for (int k = 0; k < r->K; k++)
            sum += wk[ids[k]];
    }
    const double scale = r->mode == MOE_SIGMOID_GROUPED ? MOE_ROUTED_SCALE : 1.0;
    for (int k = 0; k < r->K; k++)
        w[k] = sum > 0 ? wk[ids[k]] / sum * scale : 0.0;
}

void kb_moe_route_token(const kb_moe_route *r, const float *logits, const float *bias,
                        int32_t *ids, double *w)
{
    double sel[MOE_MAX_E], wk[MOE_MAX_E];
    int elig[MOE_MAX_E];
    kb_moe_route_keys(r, logits, bias, sel, wk);
    for (int i = 0; i < r->E; i++)
        elig[i] = 1;
    if (r->mode == MOE_SIGMOID_GROUPED) {
        double gs[MOE_MAX_E];
        int gfree[MOE_MAX_E], kept[MOE_MAX_E] = {0};
        kb_moe_group_scores(r, sel, gs);
        for (int g = 0; g < r->groups; g++)
            gfree[g] = 1;
        for (int k = 0; k < r->topk_group; k++) {
            const int g = best_of(gs, gfree, r->groups);
            gfree[g] = 0;
            kept[g] = 1;
        }
        for (int i = 0; i < r->E; i++)
            elig[i] = kept[i / (r->E / r->groups)];
    }
    for (int k = 0; k < r->K; k++) {
        const int i = best_of(sel, elig, r->E);
        elig[i] = 0;
        ids[k] = i;
    }
    kb_moe_route_weights_for(r, wk, ids, w);
    /* output order: weight descending, ties by index (insertion sort, K <= 16) */
    for (int a = 1; a < r->K; a++)
        for (int b = a; b > 0 && (w[b] > w[b - 1] || (w[b] == w[b - 1] && ids[b] < ids[b - 1]));
             b--) {
            const double tw = w[b];
            const int32_t ti = ids[b];
            w[b] = w[b - 1];
            ids[b] = ids[b - 1];
            w[b - 1] = tw;
            ids[b - 1] = ti;
        }
}

/* (hi - lo) normalized by max(1, |lo|); hi > lo. */
static double gap(double hi, double lo) { return (hi - lo) / fmax(1.0, fabs(lo)); }

double kb_moe_compare_ids(const kb_moe_route *r, const float *logits, const float *bias,
                          const int32_t *ids, char *msg, size_t msglen)
{
    const int E = r->E, K = r->K;
    double sel[MOE_MAX_E], wk[MOE_MAX_E], err = 0;
    int used[MOE_MAX_E] = {0}, elig[MOE_MAX_E];
    for (int k = 0; k < K; k++) {
        if (ids[k] < 0 || ids[k] >= E) {
            snprintf(msg, msglen, "slot %d: id %d is outside 0..%d", k, ids[k], E - 1);
            return INFINITY;
        }
        if (used[ids[k]]) {
            snprintf(msg, msglen, "id %d picked twice", ids[k]);
            return INFINITY;
        }
        used[ids[k]] = 1;
    }
    kb_moe_route_keys(r, logits, bias, sel, wk);
    for (int i = 0; i < E; i++)
        elig[i] = 1;
    if (r->mode == MOE_SIGMOID_GROUPED) {
        /* the kernel's kept groups: those of its ids, completed in the definition's order */
        const int n = E / r->groups;
        double gs[MOE_MAX_E];
        int kept[MOE_MAX_E] = {0}, nkept = 0, gfree[MOE_MAX_E];
        kb_moe_group_scores(r, sel, gs);
        for (int k = 0; k < K; k++)
            if (!kept[ids[k] / n]) {
                kept[ids[k] / n] = 1;
                nkept++;
            }
        if (nkept > r->topk_group) {
            snprintf(msg, msglen, "ids span %d groups, more than topk_group=%d", nkept,
                     r->topk_group);
            return INFINITY;
        }
        for (int g = 0; g < r->groups; g++)
            gfree[g] = !kept[g];
        while (nkept < r->topk_group) {
            const int g = best_of(gs, gfree, r->groups);
            gfree[g] = 0;
            kept[g] = 1;
            nkept++;
        }
        for (int g = 0; g < r->groups; g++)
            for (int o = 0; o < r->groups; o++) {
                if (!kept[g] || kept[o])
                    continue;
                if (gs[o] > gs[g]) { /* a dropped group scores above a kept one */
                    if (gs[g] == -INFINITY) {
                        snprintf(msg, msglen, "group %d (score -inf: NaN logits) kept over group "
                                 "%d (score %g)", g, o, gs[o]);
                        return INFINITY;
                    }
                    err = fmax(err, gap(gs[o], gs[g]));
                } else if (gs[o] == gs[g] && o < g) {
                    snprintf(msg, msglen, "groups %d and %d tie (score %g): the lower index is "
                             "kept", o, g, gs[g]);
                    return INFINITY;
                }
            }
        for (int i = 0; i < E; i++)
            elig[i] = kept[i / n];
    }
    /* selection: no eligible expert left out may score above one taken */
    int worst = -1, best = -1; /* worst taken (ties: higher index), best left (ties: lower) */
    for (int i = 0; i < E; i++) {
        if (used[i] && (worst < 0 || sel[i] <= sel[worst]))
            worst = i;
        if (!used[i] && elig[i] && (best < 0 || sel[i] > sel[best]))
            best = i;
    }
    if (best >= 0) {
        if (sel[best] > sel[worst]) {
            if (sel[worst] == -INFINITY) {
                snprintf(msg, msglen, "expert %d (score -inf: a NaN or -inf logit) picked over "
                         "expert %d (score %g)", worst, best, sel[best]);
                return INFINITY;
            }
            err = fmax(err, gap(sel[best], sel[worst]));
        } else if (sel[best] == sel[worst] && best < worst) {
            snprintf(msg, msglen, "experts %d and %d tie (score %g): the lower index is picked",
                     best, worst, sel[worst]);
            return INFINITY;
        }
    }
    /* order: weight (key) descending, ties by index */
    double kmax = 0;
    for (int i = 0; i < E; i++)
        kmax = fmax(kmax, wk[i]);
    for (int k = 0; k + 1 < K; k++) {
        const double a = wk[ids[k]], b = wk[ids[k + 1]];
        if (b > a) {
            err = fmax(err, (b - a) / kmax);
        } else if (b == a && ids[k + 1] < ids[k]) {
            snprintf(msg, msglen, "slots %d and %d hold experts %d and %d of equal weight: the "
                     "lower index comes first", k, k + 1, ids[k], ids[k + 1]);
            return INFINITY;
        }
    }
    if (err > 0)
        snprintf(msg, msglen, "ids differ from the definition beyond a tie: normalized score gap "
                 "%.3g", err);
    return err;
}

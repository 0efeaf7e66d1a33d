/* moe_route: shape errors; the definition on hand-made tokens (exact ties, all equal, -inf,
 * NaN, no finite logit, grouped selection); the family's comparison (what it accepts: a swap
 * within the tolerance; what it rejects: ids out of range or poisoned, repeats, a NaN ahead of a
 * finite score, ties to the higher index, wrong order, wrong weights); the CPU kernels on every
 * input distribution and odd shapes. */
#include <math.h>

#include "moe_route.h"
#include "moe_test.h"

static void test_shape_errors(void **st)
{
    (void)st;
    moe_expect_error("moe_route E=8 K=9", "K=9 > E=8");
    moe_expect_error("moe_route E=100 mode=1", "E=100 is not a multiple of groups=8");
    moe_expect_error("moe_route E=8 K=2 mode=1", "fewer than 2 experts a group");
    moe_expect_error("moe_route E=64 mode=1 groups=4 topk_group=5", "topk_group=5 > groups=4");
    moe_expect_error("moe_route E=16 K=9 mode=1 groups=8 topk_group=4", "K=9 > topk_group=4");
    moe_expect_error("moe_route mode=1 renorm=0", "always normalizes");
    moe_expect_error("moe_route mode=0 groups=4", "mode=1 (sigmoid_grouped) only");
    moe_expect_error("moe_route K=17", "out of range");
    moe_expect_error("moe_route E=513", "out of range");
}

static const float NaN_ = NAN;

/* The definition on one token. */
static void route(const kb_moe_route *r, const float *l, const float *b, int32_t *ids, double *w)
{
    kb_moe_route_token(r, l, b, ids, w);
}

static void test_definition_softmax(void **st)
{
    (void)st;
    const kb_moe_route r = {8, 3, MOE_SOFTMAX_TOPK, 1, 8, 4};
    int32_t ids[3];
    double w[3];
    /* exact ties: 2.0 at 1, 4, 6; 1.0 at 0: the lower indices of the tie, in index order */
    const float a[8] = {1, 2, 0, -1, 2, 0, 2, -3};
    route(&r, a, NULL, ids, w);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 4);
    assert_int_equal(ids[2], 6);
    assert_true(fabs(w[0] - 1.0 / 3) < 1e-15 && w[0] == w[1] && w[1] == w[2]);
    /* all equal: 0, 1, 2 */
    const float b[8] = {5, 5, 5, 5, 5, 5, 5, 5};
    route(&r, b, NULL, ids, w);
    assert_int_equal(ids[0] + 10 * ids[1] + 100 * ids[2], 0 + 10 + 200);
    /* NaN never ahead of a finite score; -inf ranks with NaN below every finite score */
    const float c[8] = {NaN_, 0.5f, NaN_, -INFINITY, 3, NaN_, -INFINITY, NaN_};
    route(&r, c, NULL, ids, w);
    assert_int_equal(ids[0], 4);
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], 0); /* the third: NaN and -inf tie at -inf, lowest index */
    assert_true(w[2] == 0 && w[0] > w[1]);
    /* nothing finite: the K lowest indices, weights 0 */
    const float d[8] = {NaN_, -INFINITY, NaN_, NaN_, -INFINITY, NaN_, NaN_, NaN_};
    route(&r, d, NULL, ids, w);
    assert_int_equal(ids[0] + 10 * ids[1] + 100 * ids[2], 0 + 10 + 200);
    assert_true(w[0] == 0 && w[1] == 0 && w[2] == 0);
    /* without renormalization the weights are the softmax over all 8 */
    const kb_moe_route r0 = {8, 2, MOE_SOFTMAX_TOPK, 0, 8, 4};
    const float e[8] = {0, 0, 0, 0, 0, 0, log(3.0), 0};
    route(&r0, e, NULL, ids, w);
    assert_int_equal(ids[0], 6);
    assert_int_equal(ids[1], 0);
    assert_true(fabs(w[0] - 0.3) < 1e-7 && fabs(w[1] - 0.1) < 1e-7);
}

static void test_definition_grouped(void **st)
{
    (void)st;
    /* 8 experts in 4 groups of 2, keep 2 groups, K = 2; bias moves the selection, not the
     * weights: group scores {0,1}: 1.2, {2,3}: 0.9 + ..., */
    const kb_moe_route r = {8, 2, MOE_SIGMOID_GROUPED, 1, 4, 2};
    const float l[8] = {0, 0, 4, -4, 1, 1, -2, -2};
    const float b[8] = {0.5f, 0.1f, 0, 0, 0, 0, 0, 2.0f};
    /* s' : 1.0, 0.6 | 0.982, 0.018 | 0.731, 0.731 | 0.119, 2.119
     * groups: 1.6, 1.0, 1.462, 2.238 -> keep groups 3 and 0 -> best s': 7 (2.119), 0 (1.0) */
    int32_t ids[2];
    double w[2];
    route(&r, l, b, ids, w);
    /* weights by s: s7 = 0.119, s0 = 0.5: order 0, 7 */
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 7);
    const double s0 = 0.5, s7 = 1 / (1 + exp(2.0));
    assert_true(fabs(w[0] - 2.5 * s0 / (s0 + s7)) < 1e-12);
    assert_true(fabs(w[1] - 2.5 * s7 / (s0 + s7)) < 1e-12);
    /* a NaN: selection score -inf (never ahead of a finite one), weight 0 */
    const float l2[8] = {NaN_, 0, 0, 0, 0, 0, 0, 0};
    const float b2[8] = {9, 0, 0, 0, 0, 0, 0, 0};
    route(&r, l2, b2, ids, w);
    assert_true(ids[0] != 0 && ids[1] != 0);
}

/* ---- the comparison ---------------------------------------------------------------------- */

static double cmp_ids(const kb_moe_route *r, const float *l, const float *b, const int32_t *ids,
                      char *msg)
{
    return kb_moe_compare_ids(r, l, b, ids, msg, 200);
}

static void test_compare_ids(void **st)
{
    (void)st;
    const kb_moe_route r = {8, 3, MOE_SOFTMAX_TOPK, 1, 8, 4};
    char msg[200];
    const float l[8] = {1, 2, 0, -1, 2, 0, 2, -3};
    const int32_t good[3] = {1, 4, 6};
    assert_true(cmp_ids(&r, l, NULL, good, msg) == 0);
    const int32_t poison[3] = {1, 4, (int32_t)0xCDCDCDCDu};
    assert_true(isinf(cmp_ids(&r, l, NULL, poison, msg)) && strstr(msg, "outside"));
    const int32_t big[3] = {1, 4, 8};
    assert_true(isinf(cmp_ids(&r, l, NULL, big, msg)) && strstr(msg, "outside"));
    const int32_t rep[3] = {1, 4, 4};
    assert_true(isinf(cmp_ids(&r, l, NULL, rep, msg)) && strstr(msg, "twice"));
    const int32_t order[3] = {4, 1, 6}; /* equal weights: the lower index first */
    assert_true(isinf(cmp_ids(&r, l, NULL, order, msg)) && strstr(msg, "lower index"));
    /* a tie at the K-th place broken to the higher index: rejected */
    const float t[8] = {3, 2, 1, 1, 0, 0, 0, 0};
    const int32_t lo[3] = {0, 1, 2}, hi[3] = {0, 1, 3};
    assert_true(cmp_ids(&r, t, NULL, lo, msg) == 0);
    assert_true(isinf(cmp_ids(&r, t, NULL, hi, msg)) && strstr(msg, "lower index"));
    /* a near tie (1e-7 apart): either passes the tolerance; a real gap does not */
    const float n[8] = {3, 2, 1, 1 - 1e-7f, 0, 0, 0, 0};
    const int32_t swap[3] = {0, 1, 3};
    assert_true(cmp_ids(&r, n, NULL, swap, msg) < 1e-6);
    const float g[8] = {3, 2, 1, 0.9f, 0, 0, 0, 0};
    assert_true(cmp_ids(&r, g, NULL, swap, msg) > 0.05);
    /* a NaN or -inf picked ahead of a finite score */
    const float nan8[8] = {3, 2, NaN_, 1, 0, -INFINITY, 0, 0};
    const int32_t pn[3] = {0, 1, 2}, pi[3] = {0, 1, 5}, ok[3] = {0, 1, 3};
    assert_true(isinf(cmp_ids(&r, nan8, NULL, pn, msg)) && strstr(msg, "NaN"));
    assert_true(isinf(cmp_ids(&r, nan8, NULL, pi, msg)) && strstr(msg, "NaN"));
    assert_true(cmp_ids(&r, nan8, NULL, ok, msg) == 0);
    /* wrong order beyond a tie */
    const int32_t bad[3] = {1, 0, 3};
    assert_true(cmp_ids(&r, nan8, NULL, bad, msg) > 0.1);
    /* grouped: an expert of a group that is not among the best */
    const kb_moe_route rg = {8, 2, MOE_SIGMOID_GROUPED, 1, 4, 2};
    const float gl[8] = {0, 0, 4, -4, 1, 1, -2, -2};
    const float gb[8] = {0.5f, 0.1f, 0, 0, 0, 0, 0, 2.0f};
    const int32_t gok[2] = {0, 7}, gbad[2] = {0, 2};
    assert_true(cmp_ids(&rg, gl, gb, gok, msg) == 0);
    assert_true(cmp_ids(&rg, gl, gb, gbad, msg) > 0.05);
    const kb_moe_route rg1 = {8, 2, MOE_SIGMOID_GROUPED, 1, 4, 1};
    assert_true(isinf(cmp_ids(&rg1, gl, gb, gok, msg)) && strstr(msg, "groups"));
}

static void test_compare_weights(void **st)
{
    (void)st;
    const kb_moe_route r = {8, 3, MOE_SOFTMAX_TOPK, 1, 8, 4};
    char msg[200];
    const float l[8] = {1, 2, 0, -1, 2, 0, 2, -3};
    const int32_t ids[3] = {1, 4, 6};
    const float w[3] = {1.0f / 3, 1.0f / 3, 1.0f / 3};
    assert_true(kb_moe_route_compare_weights(&r, l, NULL, ids, w, msg, sizeof msg) < 1e-7);
    const float w2[3] = {1.0f / 3, 1.01f / 3, 1.0f / 3};
    assert_true(kb_moe_route_compare_weights(&r, l, NULL, ids, w2, msg, sizeof msg) > 5e-3);
    /* grouped: the weights the definition gives the kernel's own ids (s / sum s, x 2.5) */
    const kb_moe_route rg = {4, 1, MOE_SIGMOID_GROUPED, 1, 2, 1};
    const float gl[4] = {-5, -5, 0, 3};
    const float gb[4] = {0, 0, 0.5f, 0.5f};
    const int32_t one[1] = {3};
    const float wone[1] = {2.5f};
    assert_true(kb_moe_route_compare_weights(&rg, gl, gb, one, wone, msg, sizeof msg) < 1e-7);
}

/* ---- the kernels ------------------------------------------------------------------------- */

static const char *const odd[] = {
    "moe_route tokens=1 E=1 K=1",
    "moe_route tokens=3 E=37 K=5 renorm=0",
    "moe_route tokens=70 E=512 K=16",
    "moe_route tokens=65 E=128 K=8 renorm=0",
    "moe_route tokens=1 E=512 K=10",
    "moe_route tokens=66 E=256 K=8 mode=1",
    "moe_route tokens=5 E=48 K=16 mode=1 groups=6 topk_group=3",
    "moe_route tokens=9 E=4 K=2 mode=1 groups=2 topk_group=1",
    "moe_route tokens=3 E=512 K=10 mode=1 groups=64 topk_group=64",
};

static void test_cpu(void **st)
{
    (void)st;
    const kb_inputs d[] = {KB_INPUTS_RANDOM, KB_INPUTS_EXTREME, KB_INPUTS_PEAKY, KB_INPUTS_ZEROS};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        moe_check("avx512", 0, d[i], odd, (int)(sizeof odd / sizeof odd[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_errors),     cmocka_unit_test(test_definition_softmax),
        cmocka_unit_test(test_definition_grouped), cmocka_unit_test(test_compare_ids),
        cmocka_unit_test(test_compare_weights),  cmocka_unit_test(test_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

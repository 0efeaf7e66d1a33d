/* Shapes a format cannot hold are refused with a message naming the parameter, through the
 * family (validate) and the command line (exit 2); the reference on known answers: one block
 * of each format, hand-computed. */
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "kbtest.h"
#include "mma_common.h"

static void expect_invalid(const char *family, const int64_t *p, const char *needle)
{
    const kb_family *f = kb_family_find(family);
    assert_non_null(f);
    char err[256] = "";
    assert_int_equal(f->validate(p, err, sizeof err), -1);
    if (!strstr(err, needle))
        fail_msg("%s: message '%s' does not mention '%s'", family, err, needle);
}

static void test_validate(void **st)
{
    (void)st;
    const int64_t k48[8] = {4, 4, 48, 64};
    expect_invalid("mma_q8_0", k48, "K=48");
    expect_invalid("mma_q4_0", k48, "K=48");
    expect_invalid("mma_f16", k48, "K=48");
    expect_invalid("mma_bf16", k48, "K=48");
    const int64_t g48[8] = {4, 4, 96, 48};
    expect_invalid("mma_a4", g48, "group=48");
    const int64_t k96[8] = {4, 4, 96, 64};
    expect_invalid("mma_a4", k96, "K=96");
    const int64_t ok[8] = {4, 4, 128, 128};
    char err[256];
    assert_int_equal(kb_family_find("mma_a4")->validate(ok, err, sizeof err), 0);
}

static int kbench(const char *args, char *out, size_t n)
{
    const char *bin = getenv("KBENCH");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin ? bin : "./kbench", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(out, 1, n - 1, p);
    out[got] = 0;
    const int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_exit_2(void **st)
{
    (void)st;
    char out[4096];
    assert_int_equal(kbench("--kernel mma_q4_0 --shape M=4,N=4,K=48 --check --no-vulkan", out, sizeof out), 2);
    assert_non_null(strstr(out, "K=48"));
    assert_int_equal(kbench("--kernel mma_a4 --shape M=4,N=4,K=96,group=64 --check --no-vulkan", out, sizeof out), 2);
    assert_non_null(strstr(out, "group=64"));
    assert_int_equal(kbench("--kernel mma_f16 --shape M=0,N=4,K=32 --check --no-vulkan", out, sizeof out), 2);
    assert_int_equal(kbench("--kernel mma_f16 --shape M=8193,N=4,K=32 --check --no-vulkan", out, sizeof out), 2);
}

/* One token, two weight rows, one 32-block: row 0 all +1 codes, row 1 codes 0, 1, ..., 31 in
 * the format's own terms; A = 1, 2, ..., 32 (times 0.5). */
static void run_ref(const char *family, const int64_t *p, kb_tensor *in, float *c)
{
    const kb_family *f = kb_family_find(family);
    kb_tensor out[1];
    int ni, no;
    kb_tensor din[KB_MAX_TENSORS], dout[KB_MAX_TENSORS];
    f->describe(p, din, &ni, dout, &no);
    out[0] = dout[0];
    out[0].data = c;
    for (int i = 0; i < ni; i++)
        in[i].bytes = din[i].bytes;
    f->reference(p, in, out);
}

static void test_known_answers(void **st)
{
    (void)st;
    const int64_t p[8] = {1, 2, 32, 32};
    float a[32];
    double sum_a = 0, sum_ka = 0;
    for (int k = 0; k < 32; k++) {
        a[k] = 0.5f * (float)(k + 1);
        sum_a += a[k];
        sum_ka += k * a[k];
    }
    float c[2];
    /* q8_0: d = 0.25 (f16 0x3400); row 0 codes 4, row 1 codes k - 16 */
    uint8_t w8[2 * 34];
    for (int r = 0; r < 2; r++) {
        w8[34 * r] = 0x00;
        w8[34 * r + 1] = 0x34;
        for (int k = 0; k < 32; k++)
            w8[34 * r + 2 + k] = (uint8_t)(int8_t)(r == 0 ? 4 : k - 16);
    }
    kb_tensor in8[2] = {{.data = w8}, {.data = a}};
    run_ref("mma_q8_0", p, in8, c);
    assert_float_equal(c[0], sum_a, 1e-4);
    assert_float_equal(c[1], 0.25 * (sum_ka - 16 * sum_a), 1e-4);
    /* q4_0: d = 0.25; row 0 codes 12 (weight 1), row 1: weight j codes j & 15 (low nibbles
     * for j < 16, high for j >= 16) */
    uint8_t w4[2 * 18];
    for (int r = 0; r < 2; r++) {
        w4[18 * r] = 0x00;
        w4[18 * r + 1] = 0x34;
        for (int j = 0; j < 16; j++)
            w4[18 * r + 2 + j] = r == 0 ? 0xCC : (uint8_t)(j | j << 4);
    }
    kb_tensor in4[2] = {{.data = w4}, {.data = a}};
    run_ref("mma_q4_0", p, in4, c);
    double want = 0;
    for (int k = 0; k < 32; k++)
        want += 0.25 * ((k & 15) - 8) * a[k];
    assert_float_equal(c[0], sum_a, 1e-4);
    assert_float_equal(c[1], want, 1e-4);
    /* a4, group 32: scale 0.5, bias -1 (bf16 0x3F00, 0xBF80); row 0 codes 2 (weight 0),
     * row 1 code k % 16 (word-packed LSB first) */
    uint32_t wa[2 * 4];
    for (int r = 0; r < 2; r++)
        for (int wd = 0; wd < 4; wd++) {
            uint32_t v = 0;
            for (int i = 0; i < 8; i++)
                v |= (uint32_t)(r == 0 ? 2 : (8 * wd + i) % 16) << (4 * i);
            wa[4 * r + wd] = v;
        }
    uint16_t sc[2] = {0x3F00, 0x3F00}, bi[2] = {0xBF80, 0xBF80};
    kb_tensor ina[4] = {{.data = wa}, {.data = sc}, {.data = bi}, {.data = a}};
    run_ref("mma_a4", p, ina, c);
    want = 0;
    for (int k = 0; k < 32; k++)
        want += (0.5 * (k % 16) - 1) * a[k];
    assert_float_equal(c[0], 0.0, 1e-5);
    assert_float_equal(c[1], want, 1e-4);
    /* f16 and bf16: row 0 weights 1, row 1 weights -2 */
    uint16_t wh[64], wb[64];
    for (int k = 0; k < 32; k++) {
        wh[k] = 0x3C00;
        wh[32 + k] = 0xC000;
        wb[k] = 0x3F80;
        wb[32 + k] = 0xC000;
    }
    kb_tensor inh[2] = {{.data = wh}, {.data = a}}, inb[2] = {{.data = wb}, {.data = a}};
    run_ref("mma_f16", p, inh, c);
    assert_float_equal(c[0], sum_a, 1e-4);
    assert_float_equal(c[1], -2 * sum_a, 1e-4);
    run_ref("mma_bf16", p, inb, c);
    assert_float_equal(c[0], sum_a, 1e-4);
    assert_float_equal(c[1], -2 * sum_a, 1e-4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_cli_exit_2),
        cmocka_unit_test(test_known_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* --dump and --load (issue 18): a dumped case loaded back (with another seed, so nothing is
 * regenerated) gives the same inputs and outputs bit for bit; a manifest says what each file
 * is; a file of the wrong shape or dtype is an error naming the file and the mismatch. */
#include "kbtest_cli.h"

#define CASE "--kernel matvec_a4 --shape rows=7,cols=64,group=32,experts=2,n_experts=4 --check -q --no-vulkan --threads 1"

static int same_file(const char *a, const char *b)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

static void test_round_trip(void **st)
{
    (void)st;
    char d1[] = "/tmp/kbench_dump1_XXXXXX", d2[] = "/tmp/kbench_dump2_XXXXXX";
    assert_non_null(mkdtemp(d1));
    assert_non_null(mkdtemp(d2));
    char args[1024];
    snprintf(args, sizeof args, CASE " --dump %s", d1);
    expect(args, 0, NULL);
    snprintf(args, sizeof args, CASE " --seed 99 --load %s --dump %s", d1, d2);
    expect(args, 0, NULL);
    const char *dir = "000_matvec_a4_rows=7_cols=64_tokens=1_group=32_experts=2_n_experts=4_shared_x=1";
    const char *files[] = {"in_W.npy", "in_scales.npy", "in_biases.npy", "in_x.npy", "in_idx.npy",
                           "ref_y.npy", "out_avx2_t1_y.npy", "out_avx512_t1_y.npy"};
    char a[512], b[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(a, sizeof a, "%s/%s/%s", d1, dir, files[i]);
        snprintf(b, sizeof b, "%s/%s/%s", d2, dir, files[i]);
        if (!same_file(a, b))
            fail_msg("%s and %s differ (or one is missing)", a, b);
    }
    snprintf(a, sizeof a, "%s/%s/manifest.json", d1, dir);
    FILE *f = fopen(a, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    fclose(f);
    assert_non_null(strstr(out, "\"npy_dtype\": \"<u4\""));
    assert_non_null(strstr(out, "u32 words of 4-bit codes"));
    assert_non_null(strstr(out, "bf16 bits"));
    assert_non_null(strstr(out, "\"cond_err\""));
    /* a case folder given directly works too */
    snprintf(args, sizeof args, CASE " --load %s/%s", d1, dir);
    expect(args, 0, NULL);
    /* a wrong shape: the other case of the family does not match the dumped files */
    snprintf(args, sizeof args,
             "--kernel matvec_a4 --shape rows=8,cols=64,group=32,experts=2,n_experts=4 --check -q "
             "--no-vulkan --threads 1 --load %s/%s", d1, dir);
    expect(args, 1, "shape 4x7x8, the case needs 4x8x8");
    snprintf(args, sizeof args, CASE " --load /nonexistent");
    expect(args, 1, "--load /nonexistent");
    snprintf(args, sizeof args, "rm -rf %s %s", d1, d2);
    assert_int_equal(system(args), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Every registered CPU implementation against the reference, on random inputs and odd shapes:
 * rows not a multiple of any tile, one row, one block, token counts 1..16, uneven thread splits.
 * New implementations are covered by registering them; nothing to add here. */
#include "kbtest.h"

static void test_matvec_odd_shapes(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=1,2,3,5,7,8,9,15,16,17,31,33,63,65 cols=32,64,96,4128",
        "matvec_q8_0 rows=1,2,3,5,7,8,9,15,16,17,31,33,63,65 cols=32,64,96,4128",
    };
    kbt_check_cpu(NULL, lines, 2);
}

static void test_matvec_tokens(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=37,300 cols=256 tokens=1,2,3,4,5,7,8,9,15,16",
        "matvec_q8_0 rows=37,300 cols=256 tokens=1,2,3,4,5,7,8,9,15,16",
    };
    kbt_check_cpu(NULL, lines, 2);
}

static void test_matvec_model_shapes(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=1024 cols=4096 tokens=1,16",
        "matvec_q4_0 rows=4096 cols=14336",
        "matvec_q8_0 rows=1024 cols=4096 tokens=1,16",
        "matvec_q8_0 rows=4096 cols=14336",
    };
    kbt_check_cpu(NULL, lines, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matvec_odd_shapes),
        cmocka_unit_test(test_matvec_tokens),
        cmocka_unit_test(test_matvec_model_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

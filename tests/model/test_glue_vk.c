/* The model group's Vulkan glue (lavapipe without a GPU) against the references: odd sizes,
 * model shapes, an embedding table larger than one binding on lavapipe (128 MiB). */
#include "kbtest.h"

static void test_glue_vk(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "embed_f32 rows=7 cols=1,13,64 tokens=1,5",
        "embed_f16 rows=7 cols=1,13,40 tokens=3",
        "embed_bf16 rows=7 cols=1,13,40 tokens=3",
        "embed_q8_0 rows=1,7 cols=32,96 tokens=1,4",
        "embed_q4_0 rows=1,7 cols=32,96 tokens=1,4",
        "rmsnorm rows=1,3 cols=1,15,17,65,200",
        "rmsnorm rows=40 cols=4096 eps_exp=5,6",
        "rope heads=1,3 head_dim=2,18,130 rot=2 tokens=1,3 p0=0,77",
        "rope heads=3 head_dim=130 rot=64,130 tokens=2 p0=5",
        "swiglu cols=1,7,17,33 tokens=1,3",
        "outgate cols=1,7,17,33 tokens=1,3",
        "residual cols=1,7,17,33 tokens=1,3",
        "cvt_f16 cols=1,7,17,33 tokens=1,3",
        "cvt_f16 cols=1024 tokens=16",
    };
    kbt_check_vk("^vk$", lines, (int)(sizeof lines / sizeof lines[0]));
}

/* A q8_0 table of 151936 x 1024 (165 MB): two bindings on lavapipe. */
static void test_embed_chunked_vk(void **st)
{
    (void)st;
    static const char *const lines[] = {"embed_q8_0 rows=151936 cols=1024 tokens=16"};
    kbt_check_vk("^vk$", lines, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glue_vk),
        cmocka_unit_test(test_embed_chunked_vk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

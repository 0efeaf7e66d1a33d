/* The Vulkan moe implementations (lavapipe without a GPU: subgroup 8, 128 MiB bindings):
 * routing on every input distribution (ties, NaN, -inf, nothing finite), the FFN on every
 * format, group and shared mode, decode and prefill, odd sizes; the layer (routing and FFN in
 * one command list). */
#include "moe_test.h"

static void test_route_vk(void **st)
{
    (void)st;
    static const char *const l[] = {
        "moe_route tokens=1 E=1 K=1",
        "moe_route tokens=7 E=37 K=5 renorm=0",
        "moe_route tokens=12 E=512 K=16",
        "moe_route tokens=13 E=256 K=8 mode=1",
        "moe_route tokens=6 E=48 K=16 mode=1 groups=6 topk_group=3",
        "moe_route tokens=3 E=512 K=10 mode=1 groups=64 topk_group=64",
    };
    const kb_inputs d[] = {KB_INPUTS_RANDOM, KB_INPUTS_EXTREME, KB_INPUTS_PEAKY, KB_INPUTS_ZEROS};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        moe_check("^vk$", 1, d[i], l, 6);
}

static void test_ffn_vk(void **st)
{
    (void)st;
    static const char *const l[] = {
        "moe_ffn tokens=1 E=8 K=3 hidden=256 ffn=128 format=0 shared=1",
        "moe_ffn tokens=1 E=1 K=1 hidden=32 ffn=32 format=0 group=32 shared=0",
        "moe_ffn tokens=1 E=8 K=3 hidden=384 ffn=192 format=1 group=64 shared=2",
        "moe_ffn tokens=1 E=8 K=3 hidden=96 ffn=160 format=2 shared=1",
        "moe_ffn tokens=9 E=8 K=3 hidden=96 ffn=160 format=0 group=32 shared=2",
        "moe_ffn tokens=9 E=8 K=3 hidden=96 ffn=160 format=1 group=32 shared=0",
        "moe_ffn tokens=6 E=8 K=3 hidden=288 ffn=224 format=2 shared=1",
        "moe_ffn tokens=19 E=16 K=4 hidden=512 ffn=256 format=0 group=128 shared=1",
    };
    moe_check("^vk$", 1, KB_INPUTS_RANDOM, l, 8);
}

static void test_layer_vk(void **st)
{
    (void)st;
    static const char *const l[] = {
        "moe_layer tokens=1 E=64 K=8 hidden=512 ffn=256 route=1",
        "moe_layer tokens=21 E=32 K=4 hidden=256 ffn=128 route=2 format=2 shared=2",
        "moe_layer tokens=5 E=16 K=3 hidden=192 ffn=320 route=0 format=1 shared=0",
        "moe_layer tokens=1 E=256 K=8 hidden=128 ffn=64 route=2 shared=2",
    };
    moe_check("^vk$", 1, KB_INPUTS_RANDOM, l, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_vk),
        cmocka_unit_test(test_ffn_vk),
        cmocka_unit_test(test_layer_vk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

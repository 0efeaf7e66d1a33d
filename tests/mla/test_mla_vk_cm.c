/* mla_decode on cooperative matrices ("vk_cm", mla_cm.coopmat.comp) against the reference, on
 * the shapes of test_mla_vk (skipped, with the reason, where the build or the device lacks
 * cooperative matrices: lavapipe always).
 *
 * Here too: an emulation of the shader on the CPU ("t_cm_emul"), statement for statement: the
 * same shared arrays in 16-byte units, the same offsets and strides in every matrix load and
 * store (coopMatLoad/Store/MulAdd done element by element), f16 rounding where the shader
 * rounds (q', the cache, p), the same masks, lazy rescale and records, then the finalize
 * pass. It checks the shader's index arithmetic and the tolerance that vk_cm states, on every
 * tile option and input distribution, where no cooperative-matrix device is at hand; what it
 * cannot check (barriers, the driver's matrix layouts) the H100 run does. */
#include <math.h>
#include <stdlib.h>

#include "kbtest.h"
#include "mla_common.h"

static const char *const lines[] = {
    "mla_decode heads=16 T=1,2,17,130 cache=0,1 w_bf16=0,1",
    "mla_decode heads=16 T=4,33 n_q=2,3,4",
    "mla_decode heads=5 T=40 n_q=3 rank=64,128 rope=16,32 v_dim=16,48 cache=1",
    "mla_decode heads=32 T=300 n_q=2 rank=128",
    "mla_decode heads=128 T=100 label=deepseek-v3",
};
#define NL (int)(sizeof lines / sizeof lines[0])

static void test_cm_device(void **st)
{
    (void)st;
    kbt_check_vk("^vk_cm$", lines, NL);
    setenv("KB_VK_MLA_RESCALE", "0", 1);
    setenv("KB_VK_MLA_SPLITS", "3", 1);
    kbt_check_vk("^vk_cm$", lines, 3);
    unsetenv("KB_VK_MLA_SPLITS");
    /* each fits 48 KiB of shared memory at R = 512 (the H100: "2,48,0" did not) */
    static const char *const tiles[] = {"1,16", "2,16", "1,32", "1,16,0", "4,16,0", "3,16"};
    for (int i = 0; i < 6; i++) {
        setenv("KB_VK_MLA_CM_TILE", tiles[i], 1);
        kbt_check_vk("^vk_cm$", lines, 2);
    }
    unsetenv("KB_VK_MLA_CM_TILE");
    unsetenv("KB_VK_MLA_RESCALE");
}

/* ---- the emulation ---------------------------------------------------------------------- */

/* The tile and plan of one emulated run (the shader's specialization constants). */
static struct {
    unsigned NR, NT, NC, split_tiles;
    float TH;
} E = {1, 16, 4, 4, 8.0f};

static float h16(float x) { return kb_f16_to_f32(kb_f32_to_f16(x)); } /* round to f16 */

/* A 16 x 16 matrix (f16 values are held as floats already rounded). */
typedef struct {
    float v[16][16];
} mat;

/* coopMatLoad of an f16 matrix from a shared uvec4 array of halves (as floats), offset and
 * stride in 16-byte units (8 halves) */
static void load_h(mat *m, const float *arr, unsigned off, unsigned stride, int col_major)
{
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            m->v[i][j] = col_major ? arr[(off + j * stride) * 8 + i] : arr[(off + i * stride) * 8 + j];
}

/* coopMatLoad / coopMatStore of an f32 matrix, shared uvec4 array of floats (4 per unit) */
static void load_f(mat *m, const float *arr, unsigned off, unsigned stride)
{
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            m->v[i][j] = arr[(off + i * stride) * 4 + j];
}

static void store_f(const mat *m, float *arr, unsigned off, unsigned stride)
{
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            arr[(off + i * stride) * 4 + j] = m->v[i][j];
}

static void muladd(const mat *a, const mat *b, mat *c) /* c += a b, f32 sums */
{
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = c->v[i][j];
            for (int k = 0; k < 16; k++)
                s += a->v[i][k] * b->v[k][j];
            c->v[i][j] = s;
        }
}

/* one cache element of [c ; k_pe] row j as the shader's fetch makes it (f16) */
static float fetch(const kb_mla_shape *s, const kb_tensor *in, unsigned j, unsigned e, unsigned j1)
{
    if (j >= j1)
        return 0.0f;
    const float x = e < (unsigned)s->R ? kb_mla_cache_at(s, &in[MLA_IN_C], (int64_t)j * s->R + e)
                                       : kb_mla_cache_at(s, &in[MLA_IN_KPE],
                                                         (int64_t)j * s->rope + e - s->R);
    return h16(x);
}

static void cm_emul(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    kb_mla_shape s;
    kb_mla_shape_of(c->p, &s);
    const unsigned NR = E.NR, NT = E.NT, NC = E.NC, R = (unsigned)s.R, ROPE = (unsigned)s.rope;
    const unsigned K = R + ROPE, KB = K / 16, NQF = (KB + NC - 1) / NC, RC = R / NC, NCB = RC / 16;
    const unsigned NPB = NT / 16, KU = K / 8, KS8 = KU + 1, SS4 = NT / 4 + 1, PS8 = NT / 8 + 1;
    const unsigned NSG = NR * NC, H = (unsigned)s.H, M = (unsigned)(s.n_q * s.H);
    const unsigned rows = (M + 16 * NR - 1) / (16 * NR) * 16 * NR, T = (unsigned)s.T;
    const unsigned p0 = (unsigned)(s.T - s.n_q);
    const unsigned split_len = E.split_tiles * NT, nsplit = (T + split_len - 1) / split_len;
    /* mla_absorb.comp */
    const float scale = (float)(kb_mla_scale(&s) * 1.4426950408889634);
    float *qa = calloc((size_t)rows * K, sizeof(float));
    const float *qn = in[MLA_IN_QNOPE].data, *qp = in[MLA_IN_QPE].data;
    for (unsigned m = 0; m < M; m++) {
        const unsigned h = m % H;
        for (unsigned r = 0; r < R; r++) {
            float a = 0.0f;
            for (unsigned d = 0; d < MLA_NOPE; d++)
                a = fmaf(kb_mla_w_at(&s, &in[MLA_IN_WUK], ((int64_t)h * MLA_NOPE + d) * R + r),
                         qn[m * MLA_NOPE + d], a);
            qa[m * K + r] = a * scale;
        }
        for (unsigned j = 0; j < ROPE; j++)
            qa[m * K + R + j] = qp[m * ROPE + j] * scale;
    }
    float *part_o = calloc((size_t)nsplit * rows * R, sizeof(float));
    float *part_ml = calloc((size_t)nsplit * rows * 2, sizeof(float));
    float *sC = calloc((size_t)NT * KS8 * 8, sizeof(float));
    float *sS = calloc((size_t)NSG * 16 * SS4 * 4, sizeof(float));
    float *sP = calloc((size_t)NR * 16 * PS8 * 8, sizeof(float));
    float sA[64], ml[64][2];
    unsigned sRes[4];
    mat *qf = calloc((size_t)NSG * NQF, sizeof(mat)), *acc = calloc((size_t)NSG * NCB, sizeof(mat));
    /* mla_cm.coopmat.comp, workgroup by workgroup, phase by phase (barrier to barrier) */
    for (unsigned split = 0; split < nsplit; split++)
        for (unsigned wy = 0; wy < rows / (16 * NR); wy++) {
            const unsigned j0 = split * split_len, j1 = T < j0 + split_len ? T : j0 + split_len;
            for (unsigned sg = 0; sg < NSG; sg++) {
                const unsigned rb = sg / NC, cq = sg % NC, rowb = (wy * NR + rb) * 16;
                for (unsigned f = 0; f < NQF; f++) {
                    const unsigned kb = cq + f * NC;
                    if (kb < KB)
                        for (int i = 0; i < 16; i++) /* coopMatLoad from qa, then to f16 */
                            for (int j = 0; j < 16; j++)
                                qf[sg * NQF + f].v[i][j] = h16(qa[rowb * K + kb * 16 + i * K + j]);
                }
                memset(&acc[sg * NCB], 0, sizeof(mat) * NCB);
            }
            for (unsigned r = 0; r < 16 * NR; r++) {
                ml[r][0] = -INFINITY;
                ml[r][1] = 0.0f;
            }
            for (unsigned jt = j0; jt < j1; jt += NT) {
                for (unsigned idx = 0; idx < NT * KU; idx++) /* stage */
                    for (unsigned k = 0; k < 8; k++)
                        sC[((idx / KU) * KS8 + idx % KU) * 8 + k] =
                            fetch(&s, in, jt + idx / KU, (idx % KU) * 8 + k, j1);
                for (unsigned b = 0; b < NR; b++)
                    sRes[b] = 0;
                for (unsigned sg = 0; sg < NSG; sg++) { /* partial S */
                    const unsigned cq = sg % NC;
                    for (unsigned nb = 0; nb < NPB; nb++) {
                        mat sm = {{{0}}}, ct;
                        for (unsigned f = 0; f < NQF; f++) {
                            const unsigned kb = cq + f * NC;
                            if (kb < KB) {
                                load_h(&ct, sC, nb * 16 * KS8 + kb * 2, KS8, 1);
                                muladd(&qf[sg * NQF + f], &ct, &sm);
                            }
                        }
                        store_f(&sm, sS, sg * 16 * SS4 + nb * 4, SS4);
                    }
                }
                for (unsigned srow = 0; srow < NR * 16; srow++) { /* softmax */
                    const unsigned b = srow / 16, r = srow % 16, grow = wy * NR * 16 + srow;
                    const unsigned jend = grow < M ? (j1 < p0 + grow / H + 1 ? j1 : p0 + grow / H + 1) : j1;
                    float sv[64], mx = -INFINITY, m = ml[srow][0];
                    for (unsigned t = 0; t < NT; t++) {
                        float x = 0.0f;
                        for (unsigned cc = 0; cc < NC; cc++)
                            x += sS[(((b * NC + cc) * 16 + r) * SS4 + t / 4) * 4 + t % 4];
                        x = jt + t < jend ? x : -INFINITY;
                        sv[t] = x;
                        mx = fmaxf(mx, x);
                    }
                    float alpha = 1.0f;
                    if (mx > m + E.TH) {
                        if (m != -INFINITY) {
                            alpha = exp2f(m - mx);
                            sRes[b] = 1;
                        }
                        m = mx;
                    }
                    float ps = 0.0f;
                    for (unsigned t = 0; t < NT; t++) {
                        const float p = sv[t] == -INFINITY ? 0.0f : exp2f(sv[t] - m);
                        ps += p;
                        sP[((b * 16 + r) * PS8 + t / 8) * 8 + t % 8] = h16(p);
                    }
                    ml[srow][0] = m;
                    ml[srow][1] = ml[srow][1] * alpha + ps;
                    sA[srow] = alpha;
                }
                for (unsigned sg = 0; sg < NSG; sg++) {
                    const unsigned rb = sg / NC, cq = sg % NC;
                    if (sRes[rb]) /* through the subgroup's scratch, as the shader */
                        for (unsigned cc = 0; cc < NCB; cc++) {
                            const unsigned sb = sg * 16 * SS4;
                            store_f(&acc[sg * NCB + cc], sS, sb, SS4);
                            for (unsigned e = 0; e < 256; e++)
                                sS[(sb + (e / 16) * SS4 + (e % 16) / 4) * 4 + e % 4] *= sA[rb * 16 + e / 16];
                            load_f(&acc[sg * NCB + cc], sS, sb, SS4);
                        }
                    for (unsigned nb = 0; nb < NPB; nb++) { /* O += P C */
                        mat pa, cv;
                        load_h(&pa, sP, rb * 16 * PS8 + nb * 2, PS8, 0);
                        for (unsigned cc = 0; cc < NCB; cc++) {
                            load_h(&cv, sC, nb * 16 * KS8 + (cq * RC + cc * 16) / 8, KS8, 0);
                            muladd(&pa, &cv, &acc[sg * NCB + cc]);
                        }
                    }
                }
            }
            for (unsigned sg = 0; sg < NSG; sg++) { /* the record */
                const unsigned rb = sg / NC, cq = sg % NC, rowb = (wy * NR + rb) * 16;
                for (unsigned cc = 0; cc < NCB; cc++)
                    for (int i = 0; i < 16; i++)
                        for (int j = 0; j < 16; j++)
                            part_o[(split * rows + rowb) * R + cq * RC + cc * 16 + i * R + j] =
                                acc[sg * NCB + cc].v[i][j];
            }
            for (unsigned srow = 0; srow < NR * 16; srow++) {
                const unsigned grow = wy * NR * 16 + srow;
                part_ml[(split * rows + grow) * 2] = ml[srow][0];
                part_ml[(split * rows + grow) * 2 + 1] = ml[srow][1];
            }
        }
    /* mla_decode_finalize.comp */
    float *ov = malloc(sizeof(float) * R);
    for (unsigned row = 0; row < M; row++) {
        const unsigned h = row % H;
        float mx = -INFINITY, L = 0.0f;
        for (unsigned sp = 0; sp < nsplit; sp++)
            mx = fmaxf(mx, part_ml[(sp * rows + row) * 2]);
        for (unsigned sp = 0; sp < nsplit; sp++) {
            const float ms = part_ml[(sp * rows + row) * 2];
            L += ms == -INFINITY ? 0.0f : exp2f(ms - mx) * part_ml[(sp * rows + row) * 2 + 1];
        }
        const float inv = L > 0.0f ? 1.0f / L : 0.0f;
        for (unsigned r = 0; r < R; r++) {
            float a = 0.0f;
            for (unsigned sp = 0; sp < nsplit; sp++) {
                const float ms = part_ml[(sp * rows + row) * 2];
                if (ms != -INFINITY)
                    a = fmaf(exp2f(ms - mx), part_o[(sp * rows + row) * R + r], a);
            }
            ov[r] = a * inv;
        }
        for (unsigned v = 0; v < (unsigned)s.v_dim; v++) {
            float a = 0.0f;
            for (unsigned r = 0; r < R; r++)
                a = fmaf(kb_mla_w_at(&s, &in[MLA_IN_WUV], ((int64_t)h * s.v_dim + v) * R + r), ov[r], a);
            ((float *)out[MLA_OUT].data)[row * s.v_dim + v] = a;
        }
    }
    free(ov);
    free(acc);
    free(qf);
    free(sP);
    free(sS);
    free(sC);
    free(part_ml);
    free(part_o);
    free(qa);
}

/* vk_cm's stated tolerance, for the emulation to be held to */
static double cm_tol(void)
{
    for (int i = 0; i < kb_impl_count(); i++) {
        const kb_impl *im = kb_impl_at(i);
        if (!strcmp(im->family, "mla_decode") && !strcmp(im->name, "vk_cm"))
            return im->tol_cond;
    }
    fail_msg("no vk_cm implementation of mla_decode registered");
    return 0;
}

static double g_worst;

static void emulate(const char *const *ls, int n, kb_inputs dist)
{
    kb_impl emul = {.family = "mla_decode", .name = "t_cm_emul", .backend = KB_BACKEND_CPU,
                    .cpu_run = cm_emul, .tol_cond = cm_tol()};
    const kb_impl *impls[] = {&emul};
    kb_case_list cl = {0};
    kbt_cases(&cl, ls, n);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.no_vulkan = 1;
    o.n_threads = 1;
    o.threads[0] = 1;
    o.registry_impls_off = 1;
    o.extra_impls = impls;
    o.n_extra_impls = 1;
    o.inputs = dist;
    kb_results r = {0};
    const int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    for (int i = 0; i < r.n; i++)
        g_worst = r.v[i].cond_err > g_worst ? r.v[i].cond_err : g_worst;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    assert_int_equal(bad, 0);
}

static void test_cm_emulated(void **st)
{
    (void)st;
    static const struct {
        unsigned nr, nt, split_tiles;
        float th;
    } cfg[] = {{1, 16, 4, 8.0f}, {2, 16, 1, 8.0f}, {1, 32, 3, 0.0f}, {3, 48, 2, 8.0f},
               {1, 16, 1000, 0.0f}};
    g_worst = 0;
    for (unsigned i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        E.NR = cfg[i].nr;
        E.NT = cfg[i].nt;
        E.split_tiles = cfg[i].split_tiles;
        E.TH = cfg[i].th;
        emulate(lines, NL, KB_INPUTS_RANDOM);
    }
    print_message("emulated vk_cm, random inputs: worst conditioned error %.3g (tolerance %.3g)\n",
                  g_worst, cm_tol());
    E.NR = 1, E.NT = 16, E.split_tiles = 4, E.TH = 8.0f;
}

/* the distributions the tolerance must hold on, at a DeepSeek-V3 width and a longer cache */
static void test_cm_emulated_inputs(void **st)
{
    (void)st;
    static const char *const more[] = {
        "mla_decode heads=16 T=1,150 n_q=1 cache=0,1",
        "mla_decode heads=16 T=2000 n_q=2",
    };
    for (int d = 0; d < 3; d++) {
        const kb_inputs dist = d == 0 ? KB_INPUTS_RANDOM : d == 1 ? KB_INPUTS_PEAKY : KB_INPUTS_OUTLIERS;
        g_worst = 0;
        emulate(more, 2, dist);
        print_message("emulated vk_cm, %s inputs: worst conditioned error %.3g\n",
                      kb_inputs_name(dist), g_worst);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cm_emulated),
        cmocka_unit_test(test_cm_emulated_inputs),
        cmocka_unit_test(test_cm_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

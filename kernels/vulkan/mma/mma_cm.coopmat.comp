#version 450
/* mma GEMM on cooperative matrices (GL_NV_cooperative_matrix: 16x16x16 products of f16 operands
 * with f32 sums), for every weight format (mma_cm_vk.c, implementation vk_cm).
 *
 * A workgroup of WM x WN subgroups computes a BM x BN tile of C (BM = 16 FM WM tokens, BN =
 * 16 FN WN weight rows); subgroup (wm, wn) owns FM x FN 16x16 accumulators. Per stage of BK =
 * 32 BKB values of K the workgroup stages A (f32 -> f16, coalesced vec4 loads) and W
 * (dequantized from its format by mma_stage.glsl's w_load / w_dequant, to f16) in shared
 * memory, row-major with k contiguous (rows padded by 8 halves against bank conflicts); each
 * subgroup then loads its fragments (A row-major; W as the column-major K x N operand: element
 * (k, n) at row n) and multiplies. With PREFETCH the next stage's raw loads are issued into
 * registers before this stage's products, and decoded into shared memory after them.
 * At the end each subgroup passes its accumulators through a 16x16 f32 scratch in shared
 * memory to C, with bounds (M, N need not be multiples of the tile).
 * Shared arrays are uvec4 arrays (8 halves or 4 floats); cooperative-matrix offsets and
 * strides count 16-byte units. Needs a fixed subgroup size of 16 to 64. */
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;   /* WM * WN * SGS */
layout(constant_id = 1) const uint SGS = 32;   /* the device's subgroup size */
layout(constant_id = 2) const uint FMT = 0;    /* 0 q8_0, 1 q4_0, 2 a4, 3 f16, 4 bf16 */
layout(constant_id = 3) const uint GROUP = 64; /* a4 */
layout(constant_id = 4) const uint WM = 2;     /* subgroups along M */
layout(constant_id = 5) const uint WN = 4;     /* subgroups along N */
layout(constant_id = 6) const uint FM = 4;     /* 16-row fragments per subgroup along M */
layout(constant_id = 7) const uint FN = 2;     /* along N */
layout(constant_id = 8) const uint BKB = 2;    /* 32-blocks of K per stage */
layout(constant_id = 9) const bool PREFETCH = true;

#include "mma_stage.glsl"

#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define F16M fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

const uint BM = 16u * FM * WM, BN = 16u * FN * WN, BK = 32u * BKB;
const uint LS8 = (BK + 8u) / 8u;                /* row stride in 16-byte units */
const uint NSG = WM * WN;
const uint A_PT = (BM * BK / 4u + WG - 1u) / WG; /* A vec4s per thread and stage */
const uint W_PT = (BN * 4u * BKB + WG - 1u) / WG; /* weight parts per thread and stage */

shared uvec4 sA[BM * LS8]; /* f16 */
shared uvec4 sB[BN * LS8]; /* f16 */
shared uvec4 sC[NSG * 64u]; /* f32: a 16x16 scratch per subgroup */

/* staging registers: A as f16 pairs, weight parts raw */
uvec2 ra[A_PT];
WRaw rw[W_PT];

void load_stage(uint m0, uint n0, uint kb0)
{
    [[unroll]] for (uint k = 0; k < A_PT; k++) {
        const uint u = gl_LocalInvocationID.x + k * WG;
        const uint r = u / (BK / 4u), c4 = u % (BK / 4u), m = m0 + r;
        vec4 a = vec4(0.0);
        if (u < BM * BK / 4u && m < pc.M)
            a = av[pc.a_off + m * (pc.K / 4u) + kb0 * 8u + c4];
        ra[k] = uvec2(packHalf2x16(a.xy), packHalf2x16(a.zw));
    }
    [[unroll]] for (uint k = 0; k < W_PT; k++) {
        const uint u = gl_LocalInvocationID.x + k * WG;
        const uint r = u / (4u * BKB), b = (u / 4u) % BKB, p = u % 4u, n = n0 + r;
        if (u < BN * 4u * BKB && n < pc.N) {
            rw[k] = w_load(n, kb0 + b, p);
        } else { /* past N: zero bits, which every format decodes to 0 (scale 0) */
            rw[k].q = uvec4(0u);
            rw[k].s = 0u;
            rw[k].b = 0u;
        }
    }
}

void store_stage()
{
    [[unroll]] for (uint k = 0; k < A_PT; k++) {
        const uint u = gl_LocalInvocationID.x + k * WG;
        if (u < BM * BK / 4u) {
            const uint r = u / (BK / 4u), c4 = u % (BK / 4u), a = r * LS8 + c4 / 2u;
            if (c4 % 2u == 0u)
                sA[a].xy = ra[k];
            else
                sA[a].zw = ra[k];
        }
    }
    [[unroll]] for (uint k = 0; k < W_PT; k++) {
        const uint u = gl_LocalInvocationID.x + k * WG;
        if (u < BN * 4u * BKB) {
            const uint r = u / (4u * BKB), b = (u / 4u) % BKB, p = u % 4u;
            float v[8];
            w_dequant(rw[k], v);
            [[unroll]] for (uint i = 0; i < 8u; i += 2u) {
                const uint kk = 32u * b + wk(p, i); /* even: the pair (kk, kk + 1) */
                sB[r * LS8 + kk / 8u][(kk % 8u) / 2u] = packHalf2x16(vec2(v[i], v[i + 1u]));
            }
        }
    }
}

void main()
{
    const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint wm = sg / WN, wn = sg % WN;
    const uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM;
    const uint nstage = pc.K / BK;

    ACC acc[FM][FN];
    [[unroll]] for (uint i = 0; i < FM; i++)
        [[unroll]] for (uint j = 0; j < FN; j++)
            acc[i][j] = ACC(0.0);

    load_stage(m0, n0, 0u);
    for (uint st = 0; st < nstage; st++) {
        barrier(); /* the previous stage's fragment loads are done */
        store_stage();
        barrier();
        if (PREFETCH && st + 1u < nstage)
            load_stage(m0, n0, (st + 1u) * BKB);
        [[unroll]] for (uint ks = 0; ks < BK / 16u; ks++) {
            F16M fa[FM], fb[FN];
            [[unroll]] for (uint i = 0; i < FM; i++)
                coopMatLoadNV(fa[i], sA, ((wm * FM + i) * 16u) * LS8 + 2u * ks, LS8, false);
            [[unroll]] for (uint j = 0; j < FN; j++)
                coopMatLoadNV(fb[j], sB, ((wn * FN + j) * 16u) * LS8 + 2u * ks, LS8, true);
            [[unroll]] for (uint i = 0; i < FM; i++)
                [[unroll]] for (uint j = 0; j < FN; j++)
                    acc[i][j] = coopMatMulAddNV(fa[i], fb[j], acc[i][j]);
        }
        if (!PREFETCH && st + 1u < nstage)
            load_stage(m0, n0, (st + 1u) * BKB);
    }

    /* accumulators to C, a 16x16 block at a time through this subgroup's scratch */
    [[unroll]] for (uint i = 0; i < FM; i++) {
        [[unroll]] for (uint j = 0; j < FN; j++) {
            coopMatStoreNV(acc[i][j], sC, sg * 64u, 4u, false);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            const uint mb = m0 + (wm * FM + i) * 16u, nb = n0 + (wn * FN + j) * 16u;
            for (uint e = lane; e < 256u; e += SGS) {
                const uint r = e / 16u, c = e % 16u, m = mb + r, n = nb + c;
                if (m < pc.M && n < pc.N)
                    cv[pc.c_off + m * pc.ldc + n] = uintBitsToFloat(sC[sg * 64u + e / 4u][e % 4u]);
            }
            subgroupMemoryBarrierShared();
            subgroupBarrier();
        }
    }
}

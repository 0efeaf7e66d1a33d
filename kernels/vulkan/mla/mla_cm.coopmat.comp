#version 450
/* MLA decode, split pass on cooperative matrices (GL_NV_cooperative_matrix: 16x16x16 products
 * of f16 operands with f32 accumulation), for the "vk_cm" implementation (mla_cm_vk.c); the
 * absorb and finalize passes are the scalar implementation's (mla_vk.h).
 *
 * Heads are the M dimension, as in FlashMLA: a workgroup owns NR blocks of 16 rows (row
 * m = i * H + h; qa is zero past the last row) and one split of the positions (of this
 * dispatch's part of the cache). Subgroup sg serves row block rb = sg / NC and column group
 * cq = sg % NC: its O accumulators hold 16 rows x R / NC latent columns (R split NC ways keeps
 * them in registers), its Q fragments the k-blocks cq, cq + NC, ... of [q' ; q_pe] (16 x 16 f16
 * each, loaded once). Per tile of NT positions:
 *   stage: the workgroup converts the tile's [c ; k_pe] rows to f16 in shared memory (bf16 to
 *     f16 is exact in f16's normal range); with PREFETCH the next tile's are loaded into
 *     registers while this one is computed;
 *   S: each subgroup multiplies its k-blocks (a quarter of K when NC = 4) for all NT columns
 *     and stores the partial S to shared memory;
 *   softmax: thread r < 16 NR owns row r: sums the NC partials, masks (past the split's end;
 *     causal: position j is hidden from query i when j > T - n_q + i), the lazy rescale (the
 *     reference max moves only when a score exceeds it by more than TH: p = 2^(s - m) <= 2^TH
 *     stays exact enough in f16), p as f16 to shared memory, l; alpha per row;
 *   rescale: only on tiles where some row's reference max moved from a finite value: each
 *     subgroup's O fragments go through shared memory, rows times alpha (mostly never after
 *     the first tile);
 *   O += P C: P (16 x NT, f16) times the tile's latent columns of this subgroup.
 * The split's record per row: the unnormalised O (coopMatStore straight to part_o) and (m, l).
 * Shared arrays are uvec4 arrays (8 halves or 4 floats): matrix offsets and strides count
 * 16-byte units. Correct for any subgroup size the cooperative matrices allow: the softmax is
 * per thread, through shared memory. */
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;  /* NR * NC * SGS */
layout(constant_id = 1) const uint NR = 1;    /* row blocks of 16 per workgroup */
layout(constant_id = 2) const uint NC = 4;    /* column groups (subgroups) per row block */
layout(constant_id = 3) const uint R = 512;   /* a multiple of 16 * NC */
layout(constant_id = 4) const uint ROPE = 64;
layout(constant_id = 5) const uint NT = 16;   /* positions per tile, a multiple of 16 */
layout(constant_id = 6) const bool CACHE_F16 = false;
layout(constant_id = 7) const float TH = 8.0;
layout(constant_id = 8) const bool PREFETCH = true;

#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define F16M fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define NEG_INF uintBitsToFloat(0xFF800000u)

const uint K = R + ROPE;
const uint KB = K / 16u;                   /* k-blocks of [q' ; q_pe] */
const uint NQF = (KB + NC - 1u) / NC;      /* Q fragments per subgroup at most */
const uint RC = R / NC;                    /* latent columns per subgroup */
const uint NCB = RC / 16u;                 /* O fragments per subgroup */
const uint NPB = NT / 16u;                 /* position blocks per tile */
const uint KU = K / 8u, RU = R / 8u;       /* 16-byte f16 units per staged row, of c */
const uint KS8 = KU + 1u;                  /* staged row stride (bank spread) */
const uint SS4 = NT / 4u + 1u;             /* partial-S row stride (f32: 4 per unit) */
const uint PS8 = NT / 8u + 1u;             /* P row stride (f16: 8 per unit) */
const uint NSG = NR * NC;
const uint LPT = (NT * KU + WG - 1u) / WG; /* staged units per thread */

layout(std430, binding = 0) readonly buffer QAb { float qa[]; };      /* [rows][K] */
layout(std430, binding = 1) readonly buffer Cb { uvec4 cu[]; };       /* part: [j][R / 8] */
layout(std430, binding = 2) readonly buffer Pb { uvec4 pu[]; };       /* part: [j][ROPE / 8] */
layout(std430, binding = 3) writeonly buffer Ob { float part_o[]; };  /* [nsplit][rows][R] */
layout(std430, binding = 4) writeonly buffer Mb { vec2 part_ml[]; };  /* [nsplit][rows] */

layout(push_constant) uniform PC {
    uint T;
    uint p0;        /* T - n_q */
    uint H;
    uint M;         /* real rows */
    uint rows;      /* rows of qa and of the records: M rounded up to 16 * NR */
    uint split_len; /* a multiple of NT */
    uint part_j0;
    uint split0;
} pc;

shared uvec4 sC[NT * KS8];            /* f16 */
shared uvec4 sS[NSG * 16u * SS4];     /* f32: partial S, then rescale scratch */
shared uvec4 sP[NR * 16u * PS8];      /* f16 */
shared float sA[NR * 16u];            /* alpha per row */
shared uint sRes[NR];                 /* 1: some row of the block rescales on this tile */

void sg_sync()
{
    subgroupMemoryBarrierShared();
    subgroupBarrier();
}

/* 8 halves of unit u of staged row t (position j): c units, then k_pe units; 0 past j1 */
uvec4 fetch(uint j, uint u, uint j1)
{
    if (j >= j1)
        return uvec4(0u);
    const uint jl = j - pc.part_j0;
    if (CACHE_F16)
        return u < RU ? cu[jl * RU + u] : pu[jl * (ROPE / 8u) + u - RU];
    /* bf16: the same 16 bytes hold the 8 elements as 4 words of 2: bf16 -> f32 -> f16 */
    const uvec4 w = u < RU ? cu[jl * RU + u] : pu[jl * (ROPE / 8u) + u - RU];
    uvec4 h;
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        h[i] = packHalf2x16(vec2(uintBitsToFloat(w[i] << 16), uintBitsToFloat(w[i] & 0xFFFF0000u)));
    return h;
}

void main()
{
    const uint tid = gl_LocalInvocationID.x, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint rb = sg / NC, cq = sg % NC;
    const uint split = pc.split0 + gl_WorkGroupID.x;
    const uint rowb = (gl_WorkGroupID.y * NR + rb) * 16u; /* this subgroup's first row */
    const uint j0 = split * pc.split_len, j1 = min(pc.T, j0 + pc.split_len);

    /* Q fragments of this subgroup's k-blocks, scaled already (mla_absorb.comp) */
    F16M qf[NQF];
    [[unroll]] for (uint f = 0u; f < NQF; f++) {
        const uint kb = cq + f * NC;
        if (kb < KB) {
            ACC x;
            coopMatLoadNV(x, qa, rowb * K + kb * 16u, K, false);
            qf[f] = F16M(x);
        }
    }
    ACC acc[NCB];
    [[unroll]] for (uint c = 0u; c < NCB; c++)
        acc[c] = ACC(0.0);

    /* this thread's row in the softmax (threads < 16 NR) */
    const uint srow = tid, grow = gl_WorkGroupID.y * NR * 16u + srow;
    const uint jend = grow < pc.M ? min(j1, pc.p0 + grow / pc.H + 1u) : j1;
    float m = NEG_INF, l = 0.0;

    uvec4 pf[LPT];
    if (PREFETCH) {
        [[unroll]] for (uint k = 0u; k < LPT; k++) {
            const uint idx = tid + k * WG;
            if (idx < NT * KU)
                pf[k] = fetch(j0 + idx / KU, idx % KU, j1);
        }
    }

    for (uint jt = j0; jt < j1; jt += NT) {
        if (!PREFETCH) {
            [[unroll]] for (uint k = 0u; k < LPT; k++) {
                const uint idx = tid + k * WG;
                if (idx < NT * KU)
                    pf[k] = fetch(jt + idx / KU, idx % KU, j1);
            }
        }
        barrier(); /* the previous tile's readers of sC, sP, sA are done */
        [[unroll]] for (uint k = 0u; k < LPT; k++) {
            const uint idx = tid + k * WG;
            if (idx < NT * KU)
                sC[(idx / KU) * KS8 + idx % KU] = pf[k];
        }
        if (tid < NR)
            sRes[tid] = 0u;
        barrier();
        if (PREFETCH && jt + NT < j1) {
            [[unroll]] for (uint k = 0u; k < LPT; k++) {
                const uint idx = tid + k * WG;
                if (idx < NT * KU)
                    pf[k] = fetch(jt + NT + idx / KU, idx % KU, j1);
            }
        }

        /* partial S over this subgroup's k-blocks */
        [[unroll]] for (uint nb = 0u; nb < NPB; nb++) {
            ACC s = ACC(0.0);
            [[unroll]] for (uint f = 0u; f < NQF; f++) {
                const uint kb = cq + f * NC;
                if (kb < KB) {
                    F16M ct;
                    coopMatLoadNV(ct, sC, nb * 16u * KS8 + kb * 2u, KS8, true);
                    s = coopMatMulAddNV(qf[f], ct, s);
                }
            }
            coopMatStoreNV(s, sS, sg * 16u * SS4 + nb * 4u, SS4, false);
        }
        barrier();

        /* softmax: thread srow owns row srow of the workgroup (block srow / 16) */
        if (srow < NR * 16u) {
            const uint b = srow / 16u, r = srow % 16u;
            float sv[NT];
            float mx = NEG_INF;
            [[unroll]] for (uint t = 0u; t < NT; t++) {
                float x = 0.0;
                [[unroll]] for (uint c = 0u; c < NC; c++)
                    x += uintBitsToFloat(sS[((b * NC + c) * 16u + r) * SS4 + t / 4u][t % 4u]);
                x = jt + t < jend ? x : NEG_INF;
                sv[t] = x;
                mx = max(mx, x);
            }
            float alpha = 1.0;
            if (mx > m + TH) { /* m = -inf: any finite mx; O and l are still 0 then */
                if (m != NEG_INF) {
                    alpha = exp2(m - mx);
                    atomicOr(sRes[b], 1u);
                }
                m = mx;
            }
            float ps = 0.0;
            [[unroll]] for (uint t = 0u; t < NT; t += 2u) {
                const vec2 p = vec2(sv[t] == NEG_INF ? 0.0 : exp2(sv[t] - m),
                                    sv[t + 1u] == NEG_INF ? 0.0 : exp2(sv[t + 1u] - m));
                ps += p.x + p.y;
                sP[(b * 16u + r) * PS8 + t / 8u][(t % 8u) / 2u] = packFloat2x16(f16vec2(p));
            }
            l = l * alpha + ps;
            sA[srow] = alpha;
        }
        barrier();

        /* the rare rescale of O through this subgroup's scratch (its partial S is consumed) */
        if (sRes[rb] != 0u) {
            const uint sb = sg * 16u * SS4;
            [[unroll]] for (uint c = 0u; c < NCB; c++) {
                coopMatStoreNV(acc[c], sS, sb, SS4, false);
                sg_sync();
                for (uint e = lane; e < 256u; e += gl_SubgroupSize) {
                    const uint a = sb + (e / 16u) * SS4 + (e % 16u) / 4u;
                    sS[a][e % 4u] = floatBitsToUint(uintBitsToFloat(sS[a][e % 4u]) *
                                                    sA[rb * 16u + e / 16u]);
                }
                sg_sync();
                coopMatLoadNV(acc[c], sS, sb, SS4, false);
                sg_sync();
            }
        }

        /* O += P C over this subgroup's latent columns */
        [[unroll]] for (uint nb = 0u; nb < NPB; nb++) {
            F16M pa;
            coopMatLoadNV(pa, sP, rb * 16u * PS8 + nb * 2u, PS8, false);
            [[unroll]] for (uint c = 0u; c < NCB; c++) {
                F16M cv;
                coopMatLoadNV(cv, sC, nb * 16u * KS8 + (cq * RC + c * 16u) / 8u, KS8, false);
                acc[c] = coopMatMulAddNV(pa, cv, acc[c]);
            }
        }
    }

    /* the record: O straight to memory, (m, l) by the row threads */
    [[unroll]] for (uint c = 0u; c < NCB; c++)
        coopMatStoreNV(acc[c], part_o, (split * pc.rows + rowb) * R + cq * RC + c * 16u, R,
                       false);
    if (srow < NR * 16u)
        part_ml[split * pc.rows + grow] = vec2(m, l);
}

#version 450
/* Top-K routing (moe_route vk, and the first dispatch of moe_layer vk): one workgroup per token,
 * the definition of moe_ref.h. Host side: moe_vk.c.
 *
 * Each invocation holds the experts i = tid + WG m (m < NPT) as order-preserving u32 keys of
 * their selection scores (a NaN logit: the key of -inf; an expert outside the kept groups: 0,
 * below every real key). K rounds each take the best key, the lowest index among equal keys
 * (subgroupMax, then subgroupMin of the indices holding it, then over the subgroups in shared
 * memory): the definition's order and tie rule, for any subgroup size. Grouped routing first
 * scores the groups (sum of the two best), one invocation per group, and keeps the best
 * topk_group (ties to the lower index). */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NPT = 4;      /* experts per invocation: ceil(E / WG) */
layout(constant_id = 2) const bool GROUPED = false;
layout(constant_id = 3) const bool RENORM = true;

layout(std430, binding = 0) readonly buffer Lb { float logits[]; }; /* [T][E] */
layout(std430, binding = 1) readonly buffer Bb { float bias[]; };   /* [E] (grouped) */
layout(std430, binding = 2) writeonly buffer Ib { int ids[]; };     /* [T][K] */
layout(std430, binding = 3) writeonly buffer Wb { float wts[]; };   /* [T][K] */

layout(push_constant) uniform PC {
    uint E, K, groups, topk_group;
    float scale; /* routed scaling factor (grouped) */
} pc;

const uint MAXSG = 128; /* subgroups a workgroup may have (WG <= 1024, subgroups >= 8) */
shared uint s_key[MAXSG], s_idx[MAXSG];
shared uint s_pick[16];
shared float s_red[MAXSG];
shared float s_sel[512]; /* grouped: selection scores */
shared float s_gs[64];
shared uint s_kept[2]; /* 64-bit mask of kept groups */

uint order_key(float f)
{
    if (f == 0.0)
        f = 0.0; /* -0 ties with +0 */
    uint u = floatBitsToUint(f);
    return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

float wg_max(float v)
{
    float m = subgroupMax(v);
    if (subgroupElect())
        s_red[gl_SubgroupID] = m;
    barrier();
    float r = s_red[0];
    for (uint i = 1; i < gl_NumSubgroups; i++)
        r = max(r, s_red[i]);
    barrier();
    return r;
}

float wg_sum(float v)
{
    float m = subgroupAdd(v);
    if (subgroupElect())
        s_red[gl_SubgroupID] = m;
    barrier();
    float r = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++)
        r += s_red[i];
    barrier();
    return r;
}

void main()
{
    const uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x, WG = gl_WorkGroupSize.x;
    const uint E = pc.E, K = pc.K;
    float sc[NPT], sg[NPT]; /* selection score, sigmoid (grouped) */
    uint key[NPT];
    bool taken[NPT];
    float mx = -1.0 / 0.0;
    for (uint m = 0; m < NPT; m++) {
        const uint i = tid + WG * m;
        float l = i < E ? logits[t * E + i] : 0.0;
        const bool nan = isnan(l);
        if (GROUPED) {
            float e = exp(-abs(l)); /* sigmoid without overflow; -inf: 0 */
            float s = (l >= 0.0 ? 1.0 : e) / (1.0 + e);
            sg[m] = nan ? 0.0 : s;
            sc[m] = nan ? -1.0 / 0.0 : s + (i < E ? bias[i] : 0.0);
            if (i < E)
                s_sel[i] = sc[m];
        } else {
            sc[m] = nan ? -1.0 / 0.0 : l;
            sg[m] = 0.0;
            if (i < E)
                mx = max(mx, sc[m]);
        }
        key[m] = i < E ? order_key(sc[m]) : 0u;
        taken[m] = false;
    }
    if (GROUPED) {
        barrier();
        const uint per = E / pc.groups;
        if (tid < pc.groups) { /* the two best of the group */
            uint a = 0;
            for (uint i = 1; i < per; i++)
                if (s_sel[tid * per + i] > s_sel[tid * per + a])
                    a = i;
            float b = -1.0 / 0.0;
            for (uint i = 0; i < per; i++)
                if (i != a && s_sel[tid * per + i] > b)
                    b = s_sel[tid * per + i];
            s_gs[tid] = s_sel[tid * per + a] + b;
        }
        barrier();
        if (tid == 0) {
            uint k0 = 0u, k1 = 0u;
            for (uint k = 0; k < pc.topk_group; k++) {
                int best = -1;
                for (uint g = 0; g < pc.groups; g++) {
                    const bool kept = g < 32u ? ((k0 >> g) & 1u) != 0u : ((k1 >> (g - 32u)) & 1u) != 0u;
                    if (!kept && (best < 0 || s_gs[g] > s_gs[best]))
                        best = int(g);
                }
                if (best < 32)
                    k0 |= 1u << uint(best);
                else
                    k1 |= 1u << uint(best - 32);
            }
            s_kept[0] = k0;
            s_kept[1] = k1;
        }
        barrier();
        for (uint m = 0; m < NPT; m++) {
            const uint g = (tid + WG * m) / per;
            const bool kept = g < 32u ? ((s_kept[0] >> g) & 1u) != 0u
                                      : g < 64u && ((s_kept[1] >> (g - 32u)) & 1u) != 0u;
            if (!kept)
                key[m] = 0u;
        }
    } else {
        mx = wg_max(mx);
    }
    /* K rounds of the best (key, then lowest index) */
    for (uint k = 0; k < K; k++) {
        uint bk = 0u, bi = 0xFFFFFFFFu;
        for (uint m = 0; m < NPT; m++)
            if (!taken[m] && (key[m] > bk || (key[m] == bk && bi == 0xFFFFFFFFu))) {
                bk = key[m];
                bi = tid + WG * m;
            }
        const uint gk = subgroupMax(bk);
        const uint gi = subgroupMin(bk == gk ? bi : 0xFFFFFFFFu);
        if (subgroupElect()) {
            s_key[gl_SubgroupID] = gk;
            s_idx[gl_SubgroupID] = gi;
        }
        barrier();
        if (tid == 0) {
            uint ck = s_key[0], ci = s_idx[0];
            for (uint i = 1; i < gl_NumSubgroups; i++)
                if (s_key[i] > ck || (s_key[i] == ck && s_idx[i] < ci)) {
                    ck = s_key[i];
                    ci = s_idx[i];
                }
            s_pick[k] = ci;
        }
        barrier();
        const uint c = s_pick[k];
        if (c % WG == tid)
            for (uint m = 0; m < NPT; m++)
                if (m == c / WG)
                    taken[m] = true;
    }
    /* weights */
    if (!GROUPED) {
        float z = 1.0;
        if (!RENORM) {
            float part = 0.0;
            for (uint m = 0; m < NPT; m++)
                if (tid + WG * m < E && mx > -1.0 / 0.0)
                    part += exp(sc[m] - mx);
            z = wg_sum(part);
        }
        if (tid == 0) {
            float e[16], sum = 0.0;
            for (uint k = 0; k < K; k++) {
                const uint i = s_pick[k];
                const float l = logits[t * E + i];
                e[k] = isnan(l) || mx == -1.0 / 0.0 ? 0.0 : exp(l - mx);
                sum += e[k];
            }
            const float den = RENORM ? sum : z;
            for (uint k = 0; k < K; k++) {
                ids[t * K + k] = int(s_pick[k]);
                wts[t * K + k] = den > 0.0 ? e[k] / den : 0.0;
            }
        }
        return;
    }
    /* grouped: weights s / sum * scale, ordered by s descending, then index */
    for (uint k = 0; k < K; k++) { /* the picked sigmoids, through shared memory */
        const uint c = s_pick[k];
        if (c % WG == tid)
            for (uint m = 0; m < NPT; m++)
                if (m == c / WG)
                    s_red[k] = sg[m];
    }
    barrier();
    if (tid == 0) {
        float v[16], sum = 0.0;
        uint ix[16];
        for (uint k = 0; k < K; k++) {
            float s = s_red[k];
            uint id = s_pick[k];
            sum += s;
            uint p = k;
            while (p > 0u && (s > v[p - 1u] || (s == v[p - 1u] && id < ix[p - 1u]))) {
                v[p] = v[p - 1u];
                ix[p] = ix[p - 1u];
                p--;
            }
            v[p] = s;
            ix[p] = id;
        }
        const float f = sum > 0.0 ? pc.scale / sum : 0.0;
        for (uint k = 0; k < K; k++) {
            ids[t * K + k] = int(ix[k]);
            wts[t * K + k] = v[k] * f;
        }
    }
}

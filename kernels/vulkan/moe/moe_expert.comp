#version 450
/* The expert matvecs of moe_ffn / moe_layer vk (host: moe_vk.c), one shader, specialized:
 *   PROJ 0: gate and up rows of an expert against x, act[pair][f] = silu(g) u;
 *   PROJ 1: down rows against act; decode (MODE 0): y[h] = h[h] + sum over the token's slots of
 *           weight x result (the combine fused: a subgroup owns its rows of y), prefill
 *           (MODE 1): out[pair][h] for moe_combine.comp.
 *   MODE 0 (one token): workgroup row y = slot k, the expert read here from ids[k] (the shared
 *           expert: E); PROJ 1 loops over the slots itself.
 *   MODE 1 (prefill): workgroup row y = expert e, its pairs from the bucket lists
 *           (moe_bucket.comp) in tiles of TT, each weight load serving TT tokens.
 * Weights: every expert resident, in up to two banks (bindings) of whole experts; a row is
 * cols*BITS/128 uvec4 of codes in the format's order (q4_0 repacked by the host into a4's nibble
 * order, with its d as the group scale and -8d as the bias, f16 pairs: F16SB), scale and bias
 * of each group in one u32 (bf16 scale low, bias high). A subgroup owns RPS rows (PROJ 0: RPS
 * gate rows and the same up rows) and its lanes stride over the uvec4 of the row: 32 codes
 * (a4) or 16 (a8) per lane and step, one group; the x it meets is read as vec4s and serves all
 * RPS rows. Centred codes: sum_i (q_i s + b) x_i = s sum (q_i - H) x_i + (b + H s) sum x_i,
 * H = 2^(BITS-1), so that the two terms do not cancel (b is near -H s). One subgroupAdd per row
 * and token: correct for any subgroup size. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BITS = 4;
layout(constant_id = 2) const uint G = 64;
layout(constant_id = 3) const bool F16SB = false;
layout(constant_id = 4) const uint PROJ = 0;
layout(constant_id = 5) const uint MODE = 0;
layout(constant_id = 6) const uint RPS = 2;
layout(constant_id = 7) const uint TT = 4;
layout(constant_id = 8) const uint SHARED = 0;

layout(std430, binding = 0) readonly buffer Q0 { uvec4 q0[]; };
layout(std430, binding = 1) readonly buffer Q1 { uvec4 q1[]; };
layout(std430, binding = 2) readonly buffer S0 { uint sb0[]; };
layout(std430, binding = 3) readonly buffer S1 { uint sb1[]; };
layout(std430, binding = 4) readonly buffer Vi { vec4 vin[]; };     /* x [T][cols] or act [P][cols] */
layout(std430, binding = 5) writeonly buffer Vo { float vout[]; };  /* act, out [P][rows] or y */
layout(std430, binding = 6) readonly buffer Mb { uint meta[]; };    /* ids, weights, lists, cv */
layout(std430, binding = 7) readonly buffer Hb { float hres[]; };   /* h (MODE 0, PROJ 1) */

layout(push_constant) uniform PC {
    uint rows, cols, rw4, ng;    /* rows of the matrix; columns; uvec4 and groups per row */
    uint epb, ew4, eg;           /* experts per bank; uvec4 and groups per expert */
    uint moff, mgoff;            /* the matrix (gate or down) in its expert: uvec4, groups */
    uint moff2, mgoff2;          /* up (PROJ 0) */
    uint K, S, E;
    uint off_ids, off_w, off_eoff, off_pl, off_cv;
} pc;

const uint CPL = BITS == 4 ? 32 : 16; /* codes per lane step (one uvec4) */
const uint NX = CPL / 4;              /* vec4 of x per lane step */
const uint NM = PROJ == 0 ? 2 : 1;    /* matrices a row group reads: gate and up, or down */
#define HALF (BITS == 4u ? 8.0 : 128.0)

uvec4 qload(uint bank, uint i) { return bank == 0u ? q0[i] : q1[i]; }
uint sbload(uint bank, uint i) { return bank == 0u ? sb0[i] : sb1[i]; }

vec2 scale_bias(uint w)
{
    if (F16SB)
        return unpackHalf2x16(w);
    return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xFFFF0000u));
}

/* sum over the lane's codes of (code - HALF) x */
float dot_codes(uvec4 c, vec4 x[NX])
{
    float a = 0.0;
    if (BITS == 4) {
        [[unroll]] for (uint i = 0; i < 4; i++) {
            const uint lo = c[i] & 0x0F0F0F0Fu, hi = (c[i] >> 4) & 0x0F0F0F0Fu;
            const vec4 l = vec4(uvec4(lo & 0xFFu, (lo >> 8) & 0xFFu, (lo >> 16) & 0xFFu, lo >> 24)) - HALF;
            const vec4 h = vec4(uvec4(hi & 0xFFu, (hi >> 8) & 0xFFu, (hi >> 16) & 0xFFu, hi >> 24)) - HALF;
            /* codes 8i + 2b (low nibble of byte b) and 8i + 2b + 1 (high) */
            const vec4 xe = vec4(x[2 * i].x, x[2 * i].z, x[2 * i + 1].x, x[2 * i + 1].z);
            const vec4 xo = vec4(x[2 * i].y, x[2 * i].w, x[2 * i + 1].y, x[2 * i + 1].w);
            a += dot(l, xe) + dot(h, xo);
        }
    } else {
        [[unroll]] for (uint i = 0; i < 4; i++) {
            const uint w = c[i];
            a += dot(vec4(uvec4(w & 0xFFu, (w >> 8) & 0xFFu, (w >> 16) & 0xFFu, w >> 24)) - HALF, x[i]);
        }
    }
    return a;
}

/* the pair (token t, slot j) of one token's decode: p = j; prefill: from the expert's list */
uint expert_of_slot(uint k) { return k < pc.K ? meta[pc.off_ids + k] : pc.E; }

float pair_weight(uint p)
{
    const uint t = p / pc.S, j = p % pc.S;
    if (j < pc.K)
        return uintBitsToFloat(meta[pc.off_w + t * pc.K + j]);
    return SHARED == 1 ? uintBitsToFloat(meta[pc.off_cv + t]) : 1.0;
}

float silu(float g) { return g / (1.0 + exp(-g)); }

/* Rows r0 .. r0 + RPS - 1 of expert e (matrix m of PROJ: gate/up or down) against nt <= TT
 * vectors (vec4 offsets xb[t]) into acc[m][r][t] (lane partial sums). */
void rows_dot(uint e, uint r0, uint nt, uint xb[TT], inout float acc[NM][RPS][TT])
{
    const uint bank = e / pc.epb, el = e % pc.epb;
    const uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    for (uint v = lane; v < pc.rw4; v += S) {
        uvec4 c[NM][RPS];
        vec2 sb[NM][RPS];
        const uint gi = v * CPL / G;
        [[unroll]] for (uint m = 0; m < NM; m++)
            [[unroll]] for (uint r = 0; r < RPS; r++) {
                const uint row = min(r0 + r, pc.rows - 1u);
                const uint mo = m == 0u ? pc.moff : pc.moff2, mg = m == 0u ? pc.mgoff : pc.mgoff2;
                c[m][r] = qload(bank, el * pc.ew4 + mo + row * pc.rw4 + v);
                sb[m][r] = scale_bias(sbload(bank, el * pc.eg + mg + row * pc.ng + gi));
            }
        [[unroll]] for (uint t = 0; t < TT; t++) {
            if (t >= nt)
                break;
            vec4 x[NX];
            float sx = 0.0;
            [[unroll]] for (uint i = 0; i < NX; i++) {
                x[i] = vin[xb[t] + v * NX + i];
                sx += (x[i].x + x[i].y) + (x[i].z + x[i].w);
            }
            [[unroll]] for (uint m = 0; m < NM; m++)
                [[unroll]] for (uint r = 0; r < RPS; r++) {
                    const vec2 s = sb[m][r];
                    acc[m][r][t] += s.x * dot_codes(c[m][r], x) + fma(HALF, s.x, s.y) * sx;
                }
        }
    }
}

void main()
{
    const uint ngr = (pc.rows + RPS - 1u) / RPS;
    const uint step = gl_NumSubgroups * gl_NumWorkGroups.x;
    const uint nv4 = pc.cols / 4u;
    uint e = 0u, base = 0u, n = 1u;
    if (MODE == 0u) {
        if (PROJ == 0u)
            e = expert_of_slot(gl_WorkGroupID.y);
    } else {
        e = gl_WorkGroupID.y;
        base = meta[pc.off_eoff + e];
        n = meta[pc.off_eoff + e + 1u] - base;
        if (n == 0u)
            return;
    }
    for (uint rg = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID; rg < ngr; rg += step) {
        const uint r0 = rg * RPS;
        if (MODE == 0u && PROJ == 1u) { /* decode down + combine: every slot of the token */
            float y[RPS];
            [[unroll]] for (uint r = 0; r < RPS; r++)
                y[r] = 0.0;
            for (uint k = 0; k < pc.S; k++) {
                float acc[NM][RPS][TT];
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    [[unroll]] for (uint t = 0; t < TT; t++)
                        acc[0][r][t] = 0.0;
                uint xb[TT];
                [[unroll]] for (uint t = 0; t < TT; t++)
                    xb[t] = k * nv4;
                rows_dot(expert_of_slot(k), r0, 1u, xb, acc);
                const float w = pair_weight(k);
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    y[r] += w * subgroupAdd(acc[0][r][0]);
            }
            if (subgroupElect())
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    if (r0 + r < pc.rows)
                        vout[r0 + r] = hres[r0 + r] + y[r];
            continue;
        }
        for (uint p0 = 0; p0 < n; p0 += TT) {
            const uint nt = min(TT, n - p0);
            uint pr[TT], xb[TT];
            [[unroll]] for (uint t = 0; t < TT; t++) {
                pr[t] = MODE == 0u ? gl_WorkGroupID.y : meta[pc.off_pl + base + min(p0 + t, n - 1u)];
                xb[t] = (PROJ == 0u ? pr[t] / pc.S : pr[t]) * nv4; /* x of the token, act of the pair */
            }
            float acc[NM][RPS][TT];
            [[unroll]] for (uint m = 0; m < NM; m++)
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    [[unroll]] for (uint t = 0; t < TT; t++)
                        acc[m][r][t] = 0.0;
            rows_dot(e, r0, nt, xb, acc);
            [[unroll]] for (uint t = 0; t < TT; t++)
                [[unroll]] for (uint r = 0; r < RPS; r++) {
                    if (t >= nt)
                        break;
                    const float a = subgroupAdd(acc[0][r][t]);
                    float v = a;
                    if (PROJ == 0u)
                        v = silu(a) * subgroupAdd(acc[NM - 1u][r][t]);
                    if (subgroupElect() && r0 + r < pc.rows)
                        vout[pr[t] * pc.rows + r0 + r] = v;
                }
        }
    }
}

#version 450
/* MLA decode, pass 1 of the scalar Vulkan implementation (mla_vk.c): split over the cache with
 * online-softmax records, f32 arithmetic. Workgroup (x, y) owns split x of the positions (of
 * this dispatch's part of the cache: see mla_vk.c) and GH rows (row m = i * H + h, query i,
 * head h; rows past M are idle): each cache tile is read once for its GH rows. Per tile of NT
 * positions:
 *   stage: the tile's [c ; k_pe] rows as 32-bit words (pairs of bf16 or f16) in shared memory
 *          (positions past the split's end: 0);
 *   S:     task (g, t) = score of row g and position t: q_a[g] . [c_t ; k_pe_t] (qa from
 *          mla_absorb.comp, in shared memory as f32: log2 units);
 *   M:     thread g < GH: masks (past the end; causal: position j is hidden from query i when
 *          j > T - n_q + i), the tile's max, the lazy rescale (the reference max moves only
 *          when a score exceeds it by more than TH: weights <= 2^TH; alpha = 0 while it was
 *          -inf), p = 2^(s - m) in place, l;
 *   PV:    thread w owns latent words w, w + WG, ... (2 elements each) of all GH rows:
 *          acc = alpha acc + sum_t p[g][t] c_t.
 * The record of the split per row: (m, l) and the unnormalised o[R], merged with the other
 * splits' by mla_decode_finalize.comp. Correct for any subgroup size (no subgroup ops). */
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint GH = 8;   /* rows per workgroup */
layout(constant_id = 2) const uint NT = 16;  /* positions per tile */
layout(constant_id = 3) const uint R = 512;
layout(constant_id = 4) const uint ROPE = 64;
layout(constant_id = 5) const bool CACHE_F16 = false;
layout(constant_id = 6) const float TH = 8.0;
const uint K = R + ROPE;
const uint RW = R / 2u, KW = K / 2u;   /* words per latent row, per [c ; k_pe] row */
const uint CS = KW + 1u;               /* staged row stride in words (bank spread) */
const uint NW = (RW + WG - 1u) / WG;   /* latent words per thread in P V */
#define NEG_INF uintBitsToFloat(0xFF800000u)

layout(std430, binding = 0) readonly buffer QAb { float qa[]; };      /* [M][K] */
layout(std430, binding = 1) readonly buffer Cb { uint cw[]; };        /* [part][RW] */
layout(std430, binding = 2) readonly buffer Pb { uint kw[]; };        /* [part][ROPE / 2] */
layout(std430, binding = 3) writeonly buffer Ob { vec2 part_o[]; };   /* [nsplit][M][R / 2] */
layout(std430, binding = 4) writeonly buffer Mb { vec2 part_ml[]; };  /* [nsplit][M] */

layout(push_constant) uniform PC {
    uint T;         /* positions */
    uint p0;        /* T - n_q: query i attends 0 .. p0 + i */
    uint H;
    uint M;         /* rows: n_q * H */
    uint split_len; /* positions per split, a multiple of NT */
    uint part_j0;   /* first position of this part (the bindings start there) */
    uint split0;    /* index of this part's first split */
} pc;

shared uint sC[NT * CS];
shared float sQ[GH * K];
shared float sS[GH * NT];
shared float sA[GH];

vec2 unpack2(uint w)
{
    if (CACHE_F16)
        return unpackHalf2x16(w);
    return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xFFFF0000u));
}

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint split = pc.split0 + gl_WorkGroupID.x;
    const uint row0 = gl_WorkGroupID.y * GH;
    const uint j0 = split * pc.split_len, j1 = min(pc.T, j0 + pc.split_len);

    for (uint e = tid; e < GH * K; e += WG) {
        const uint row = row0 + e / K;
        sQ[e] = row < pc.M ? qa[row * K + e % K] : 0.0;
    }
    float m = NEG_INF, l = 0.0; /* row tid's state (threads tid < GH) */
    float acc[GH * NW * 2];
    [[unroll]] for (uint i = 0u; i < GH * NW * 2u; i++)
        acc[i] = 0.0;

    for (uint jt = j0; jt < j1; jt += NT) {
        barrier(); /* the previous tile's readers of sC and sS are done */
        for (uint e = tid; e < NT * KW; e += WG) {
            const uint t = e / KW, k = e % KW, j = jt + t, jl = j - pc.part_j0;
            uint w = 0u;
            if (j < j1)
                w = k < RW ? cw[jl * RW + k] : kw[jl * (ROPE / 2u) + k - RW];
            sC[t * CS + k] = w;
        }
        barrier();
        for (uint e = tid; e < GH * NT; e += WG) {
            const uint g = e / NT, t = e % NT;
            float s = 0.0;
            for (uint k = 0u; k < KW; k++) {
                const vec2 c = unpack2(sC[t * CS + k]);
                s = fma(sQ[g * K + 2u * k], c.x, s);
                s = fma(sQ[g * K + 2u * k + 1u], c.y, s);
            }
            sS[e] = s;
        }
        barrier();
        if (tid < GH) {
            const uint row = row0 + tid;
            const uint jend = row < pc.M ? min(j1, pc.p0 + row / pc.H + 1u) : 0u;
            float mx = NEG_INF;
            for (uint t = 0u; t < NT; t++) {
                const float s = jt + t < jend ? sS[tid * NT + t] : NEG_INF;
                sS[tid * NT + t] = s;
                mx = max(mx, s);
            }
            float alpha = 1.0;
            if (mx > m + TH) { /* m = -inf: any finite mx */
                alpha = m == NEG_INF ? 0.0 : exp2(m - mx);
                m = mx;
            }
            float ps = 0.0;
            for (uint t = 0u; t < NT; t++) {
                const float s = sS[tid * NT + t];
                const float p = s == NEG_INF ? 0.0 : exp2(s - m); /* m finite where s is */
                sS[tid * NT + t] = p;
                ps += p;
            }
            l = l * alpha + ps;
            sA[tid] = alpha;
        }
        barrier();
        [[unroll]] for (uint g = 0u; g < GH; g++) {
            const float a = sA[g];
            [[unroll]] for (uint i = 0u; i < NW * 2u; i++)
                acc[g * NW * 2u + i] *= a;
        }
        for (uint t = 0u; t < NT; t++) {
            [[unroll]] for (uint n = 0u; n < NW; n++) {
                const uint w = tid + n * WG;
                if (w < RW) {
                    const vec2 c = unpack2(sC[t * CS + w]);
                    [[unroll]] for (uint g = 0u; g < GH; g++) {
                        const float p = sS[g * NT + t];
                        acc[(g * NW + n) * 2u] = fma(p, c.x, acc[(g * NW + n) * 2u]);
                        acc[(g * NW + n) * 2u + 1u] = fma(p, c.y, acc[(g * NW + n) * 2u + 1u]);
                    }
                }
            }
        }
    }

    [[unroll]] for (uint g = 0u; g < GH; g++) {
        const uint row = row0 + g;
        if (row < pc.M) {
            [[unroll]] for (uint n = 0u; n < NW; n++) {
                const uint w = tid + n * WG;
                if (w < RW)
                    part_o[(split * pc.M + row) * RW + w] =
                        vec2(acc[(g * NW + n) * 2u], acc[(g * NW + n) * 2u + 1u]);
            }
        }
    }
    if (tid < GH && row0 + tid < pc.M)
        part_ml[split * pc.M + row0 + tid] = vec2(m, l);
}

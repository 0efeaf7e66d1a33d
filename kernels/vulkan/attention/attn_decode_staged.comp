#version 450
/* Decode attention, pass 1 of split-KV flash decoding, staged variant: the default of attn_vk.c
 * (KB_VK_ATTN_DECODE picks it or attn_decode.comp; both leave the same records for
 * attn_decode_combine.comp). As in attn_decode.comp a workgroup owns one split of one kv head
 * and GH of the query heads that read it, but every global load is coalesced and runs ahead:
 * thread (unit c, lane r) loads 16-byte unit c of rows r, r + R, ... (LPT rows) of a tile of
 * BK = R * LPT positions, of K and of V, so a subgroup reads whole rows; the next tile's loads
 * are issued before the current tile is computed. Per tile:
 *   K: the K units go to shared memory, rows padded by one unit (A's threads read one row
 *      each: the padding puts neighbouring rows in different banks); the next K is loaded;
 *   A: thread (row j, part a) dots units a*LPT .. a*LPT+LPT-1 of row j with the GH queries
 *      (q from shared memory as vec4s, one address per subgroup) and stores its partial
 *      scores as GH4 vec4s at [a][j]: AP = NU / LPT parts per row, so all WG threads work;
 *   B: thread (c, r) sums the AP parts of its LPT rows' scores (one vec4 per 4 heads), keeps
 *      an online softmax (m, l) of its own lane, and accumulates p * V for the dimensions of
 *      unit c from the V units in its registers, each refilled with the next tile's at once.
 * Two barriers per tile, no subgroup operations, no reduction over the workgroup per tile:
 * each lane keeps its own max, raised only when a score passes it by more than SLACK (log2
 * units), so p <= 2^SLACK and rescaling is rare after a lane's first rows (alpha = 0 while the
 * old max is -inf). At the end every lane rescales to the workgroup's max (shared memory) and
 * the lanes' o are summed: the split's record per head is (m, l) and the unnormalised o[D],
 * relative to that m (the largest lane max: within SLACK of the split's largest score).
 * Scores are in log2 units: q is scaled by log2(e) / sqrt(D) when loaded (pc.scale).
 * K/V in f16 are read as 32-bit words and unpacked (no 16-bit storage feature needed). */
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128; /* threads: a multiple of NU */
layout(constant_id = 1) const uint D = 128;  /* head size */
layout(constant_id = 2) const uint GH = 4;   /* query heads per workgroup, at most 8 */
layout(constant_id = 3) const bool KV_F16 = true;
layout(constant_id = 4) const uint LPT = 8;  /* rows per lane per tile; units per A thread */
layout(constant_id = 5) const float SLACK = 8.0; /* log2 units a score may pass its lane's max */

const uint EPU = KV_F16 ? 8u : 4u; /* cache elements per 16-byte unit */
const uint NU = D / EPU;           /* units per cache row */
const uint R = WG / NU;            /* lanes: lane r owns rows r, r + R, ... of a tile */
const uint BK = R * LPT;           /* positions per tile */
const uint AP = NU / LPT;          /* A threads per row (AP * BK = WG) */
const uint KS = NU + 1u;           /* padded K row in shared memory (units) */
const uint D4 = D / 4;
const uint GH4 = (GH + 3u) / 4u;   /* vec4s of heads */
const uint VPU = EPU / 4u;         /* vec4s per unit */
#define NEG_INF uintBitsToFloat(0xFF800000u)

layout(std430, binding = 0) readonly buffer Qb { vec4 q[]; };          /* [H][D/4] */
layout(std430, binding = 1) readonly buffer Kb { uvec4 kc[]; };        /* [T][Hkv][NU] */
layout(std430, binding = 2) readonly buffer Vb { uvec4 vc[]; };        /* [T][Hkv][NU] */
layout(std430, binding = 3) writeonly buffer Ab { vec4 part_o[]; };    /* [H][nsplit][D/4] */
layout(std430, binding = 4) writeonly buffer Mb { vec2 part_ml[]; };   /* [H][nsplit] */

layout(push_constant) uniform PC {
    uint T;         /* positions */
    uint hkv;       /* kv heads */
    uint G;         /* query heads per kv head */
    uint split_len; /* positions per split */
    uint nsplit;
    uint nhc;       /* head chunks per kv head: ceil(G / GH) */
    float scale;    /* log2(e) / sqrt(D) */
} pc;

shared vec4 sq[GH * D4];     /* scaled queries [head][D/4] */
shared uvec4 sK[BK * KS];    /* the tile's K rows, as loaded */
shared vec4 sS[WG * GH4];    /* partial scores [part][row][GH4] */
shared vec4 sm[R * GH4];     /* the end: lanes' maxima */
shared vec4 sl[R * GH4];     /* the end: lanes' sums */
shared vec4 sred[R * D4];    /* the end: lanes' o of one head */

/* The 16-byte unit w as EPU floats: lo holds elements 0..3, hi 4..7 (f16 only). */
void unpack_unit(uvec4 w, out vec4 lo, out vec4 hi)
{
    if (KV_F16) {
        lo = vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
        hi = vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w));
    } else {
        lo = uintBitsToFloat(w);
        hi = vec4(0.0);
    }
}

/* s + dot(a, b) as one chain of fmas (dot() and an add would cost a fifth more). */
float fma_dot(vec4 a, vec4 b, float s)
{
    return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, s))));
}

/* alpha of a max raised from old to mn: 0 where old is -inf (nothing accumulated yet). */
vec4 rescale(vec4 old, vec4 mn)
{
    return mix(exp2(old - mn), vec4(0.0), equal(old, vec4(NEG_INF)));
}

void main()
{
    const uint t = gl_LocalInvocationID.x;
    const uint split = gl_WorkGroupID.x;
    const uint kvh = gl_WorkGroupID.y / pc.nhc, hc = gl_WorkGroupID.y % pc.nhc;
    const uint h0 = kvh * pc.G + hc * GH;       /* first query head of this workgroup */
    const uint nh = min(GH, pc.G - hc * GH);    /* heads of it that exist */
    const uint j0 = split * pc.split_len, j1 = min(pc.T, j0 + pc.split_len);
    const uint rowu = pc.hkv * NU;              /* units from one position to the next */
    const uint c = t % NU, r = t / NU;          /* loads and B: unit, lane */
    const uint ja = t % BK, a = t / BK;         /* A: row, part */
    const uint gu = kvh * NU + c;               /* this thread's unit in a position's rows */

    for (uint i = t; i < GH * D4; i += WG) {
        const uint h = i / D4;
        sq[i] = h < nh ? q[(h0 + h) * D4 + i % D4] * pc.scale : vec4(0.0);
    }

    uvec4 pk[LPT], pv[LPT]; /* K and V units of rows r + R * i of the next tile */
    [[unroll]] for (uint i = 0; i < LPT; i++) {
        const uint j = j0 + r + R * i;
        pk[i] = j < j1 ? kc[j * rowu + gu] : uvec4(0);
        pv[i] = j < j1 ? vc[j * rowu + gu] : uvec4(0);
    }

    vec4 m[GH4], l[GH4], acc[GH * VPU];
    [[unroll]] for (uint g = 0; g < GH4; g++) {
        m[g] = vec4(NEG_INF);
        l[g] = vec4(0.0);
    }
    [[unroll]] for (uint i = 0; i < GH * VPU; i++)
        acc[i] = vec4(0.0);

    for (uint jt = j0; jt < j1; jt += BK) {
        const bool more = jt + BK < j1; /* uniform: a next tile exists */
        /* K: everyone is past the previous tile's A (its second barrier), so sK is free */
        [[unroll]] for (uint i = 0; i < LPT; i++)
            sK[(r + R * i) * KS + c] = pk[i];
        barrier(); /* also orders sq before the first A */
        if (more) {
            [[unroll]] for (uint i = 0; i < LPT; i++) {
                const uint j = jt + BK + r + R * i;
                pk[i] = j < j1 ? kc[j * rowu + gu] : uvec4(0);
            }
        }

        /* A: partial scores of row ja over this part's units; sS is free (everyone is past
         * the previous tile's B, having reached this tile's first barrier) */
        float sc[GH4 * 4];
        [[unroll]] for (uint h = 0; h < GH4 * 4; h++)
            sc[h] = 0.0;
        [[unroll]] for (uint u = 0; u < LPT; u++) {
            const uint cu = a * LPT + u;
            vec4 lo, hi;
            unpack_unit(sK[ja * KS + cu], lo, hi);
            [[unroll]] for (uint h = 0; h < GH; h++) {
                sc[h] = fma_dot(sq[h * D4 + cu * VPU], lo, sc[h]);
                if (KV_F16)
                    sc[h] = fma_dot(sq[h * D4 + cu * VPU + 1], hi, sc[h]);
            }
        }
        [[unroll]] for (uint g = 0; g < GH4; g++)
            sS[(a * BK + ja) * GH4 + g] = vec4(sc[4 * g], sc[4 * g + 1], sc[4 * g + 2],
                                               sc[4 * g + 3]);
        barrier();

        /* B: this lane's rows, online softmax, o += p V */
        [[unroll]] for (uint i = 0; i < LPT; i++) {
            const uint jj = r + R * i;
            vec4 lo, hi;
            unpack_unit(pv[i], lo, hi);
            if (more) {
                const uint j = jt + BK + jj;
                pv[i] = j < j1 ? vc[j * rowu + gu] : uvec4(0);
            }
            if (jt + jj < j1) {
                vec4 s[GH4];
                bool raise = false;
                [[unroll]] for (uint g = 0; g < GH4; g++) {
                    s[g] = sS[jj * GH4 + g];
                    [[unroll]] for (uint pa = 1; pa < AP; pa++)
                        s[g] += sS[(pa * BK + jj) * GH4 + g];
                    raise = raise || any(greaterThan(s[g], m[g] + SLACK));
                }
                if (raise) {
                    [[unroll]] for (uint g = 0; g < GH4; g++) {
                        const vec4 mn = max(m[g], s[g]);
                        const vec4 al = rescale(m[g], mn);
                        m[g] = mn;
                        l[g] *= al;
                        [[unroll]] for (uint h = 4 * g; h < min(GH, 4 * g + 4); h++)
                            [[unroll]] for (uint e = 0; e < VPU; e++)
                                acc[h * VPU + e] *= al[h % 4];
                    }
                }
                [[unroll]] for (uint g = 0; g < GH4; g++) {
                    const vec4 p = exp2(s[g] - m[g]);
                    l[g] += p;
                    [[unroll]] for (uint h = 4 * g; h < min(GH, 4 * g + 4); h++) {
                        acc[h * VPU] = fma(vec4(p[h % 4]), lo, acc[h * VPU]);
                        if (KV_F16)
                            acc[h * VPU + 1] = fma(vec4(p[h % 4]), hi, acc[h * VPU + 1]);
                    }
                }
            }
        }
    }

    /* The lanes rescaled to the workgroup's max, their o summed per head, records written. */
    if (c == 0) {
        [[unroll]] for (uint g = 0; g < GH4; g++)
            sm[r * GH4 + g] = m[g];
    }
    barrier();
    vec4 M[GH4];
    [[unroll]] for (uint g = 0; g < GH4; g++) {
        M[g] = vec4(NEG_INF);
        for (uint rr = 0; rr < R; rr++)
            M[g] = max(M[g], sm[rr * GH4 + g]);
        const vec4 al = rescale(m[g], M[g]);
        l[g] *= al;
        [[unroll]] for (uint h = 4 * g; h < min(GH, 4 * g + 4); h++)
            [[unroll]] for (uint e = 0; e < VPU; e++)
                acc[h * VPU + e] *= al[h % 4];
    }
    if (c == 0) {
        [[unroll]] for (uint g = 0; g < GH4; g++)
            sl[r * GH4 + g] = l[g];
    }
    [[unroll]] for (uint h = 0; h < GH; h++) {
        if (h < nh) { /* uniform in the workgroup */
            [[unroll]] for (uint e = 0; e < VPU; e++)
                sred[r * D4 + c * VPU + e] = acc[h * VPU + e];
            barrier();
            const uint rec = (h0 + h) * pc.nsplit + split;
            for (uint i = t; i < D4; i += WG) {
                vec4 o = vec4(0.0);
                for (uint rr = 0; rr < R; rr++)
                    o += sred[rr * D4 + i];
                part_o[rec * D4 + i] = o;
            }
            if (t == 0) {
                float L = 0.0;
                for (uint rr = 0; rr < R; rr++)
                    L += sl[rr * GH4 + h / 4][h % 4];
                part_ml[rec] = vec2(M[h / 4][h % 4], L);
            }
            barrier();
        }
    }
}

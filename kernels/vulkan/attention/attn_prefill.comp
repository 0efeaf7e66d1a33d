#version 450
/* Causal prefill attention (attn_vk.c), scalar f32 flash attention. Workgroup (x, h) owns a
 * block of BQ queries of head h (blocks numbered from the last, so the longest start first);
 * it walks the keys 0 .. its last query's position in tiles of BK, staging each K and V tile in
 * shared memory as f32 (an f16 cache is converted once there, not by every row group that
 * reads it). The next tile is loaded into registers while the current one is computed.
 * Threads form WG/8 row groups of 8; a row group owns RQ query rows:
 *   S: thread (group g, lane c) scores its RQ rows against keys c, c+8, ... of the tile (q from
 *      shared memory: the 8 lanes of a group read the same q, the keys' rows are padded by one
 *      vec4 so the 8 lanes hit different banks), masked causally, into shared memory;
 *   softmax: every lane of a group reads its rows' whole score rows, takes the tile max,
 *      rescales (alpha = 0 while the old max is -inf) and recomputes p = 2^(s - m) itself;
 *   PV: lane c accumulates p * V for its RQ rows and the vec4s c, c+8, ... of V.
 * Three barriers per tile; m and l of a row are kept (identically) by the 8 lanes of its group.
 * Scores are in log2 units (q scaled by log2(e) / sqrt(D) on load). No subgroup operations. */
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128; /* = 8 * BQ / RQ */
layout(constant_id = 1) const uint D = 128;
layout(constant_id = 2) const uint BQ = 32;  /* queries per workgroup */
layout(constant_id = 3) const uint RQ = 2;   /* query rows per row group */
layout(constant_id = 4) const uint BK = 32;  /* keys per tile, a multiple of 8 */
layout(constant_id = 5) const bool KV_F16 = true;

const uint EPU = KV_F16 ? 8u : 4u; /* cache elements per 16-byte unit */
const uint NU = D / EPU;           /* units per cache row */
const uint D4 = D / 4;
const uint KS = D4 + 1u;           /* padded K row in shared memory (vec4s) */
const uint RK = BK / 8u;           /* keys per lane in S */
const uint NVT = D4 / 8u;          /* V vec4s per lane in PV */
const uint SS = BK + 4u;           /* padded score row (floats) */
const uint LPT = (BK * NU + WG - 1u) / WG; /* K (and V) units each thread loads per tile */
#define NEG_INF uintBitsToFloat(0xFF800000u)

layout(std430, binding = 0) readonly buffer Qb { vec4 q[]; };   /* [n_q][H][D/4] */
layout(std430, binding = 1) readonly buffer Kb { uvec4 kc[]; }; /* [T][Hkv][NU] */
layout(std430, binding = 2) readonly buffer Vb { uvec4 vc[]; }; /* [T][Hkv][NU] */
layout(std430, binding = 3) writeonly buffer Ob { vec4 o[]; };  /* [n_q][H][D/4] */

layout(push_constant) uniform PC {
    uint n_q;
    uint p0;
    uint H;
    uint hkv;
    uint G;      /* H / hkv */
    uint nblk;   /* query blocks: ceil(n_q / BQ) */
    float scale; /* log2(e) / sqrt(D) */
} pc;

shared vec4 sQ[BQ * D4];
shared vec4 sK[BK * KS];
shared vec4 sV[BK * D4];
shared float sS[BQ * SS];

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

void main()
{
    const uint t = gl_LocalInvocationID.x, grp = t / 8u, c = t % 8u;
    const uint blk = pc.nblk - 1u - gl_WorkGroupID.x, h = gl_WorkGroupID.y;
    const uint kvh = h / pc.G;
    const uint i0 = blk * BQ, nv = min(BQ, pc.n_q - i0); /* valid rows */
    const uint kend = pc.p0 + i0 + nv;                   /* keys [0, kend) */
    const uint rowu = pc.hkv * NU;

    for (uint i = t; i < BQ * D4; i += WG) {
        const uint r = i / D4;
        sQ[i] = r < nv ? q[((i0 + r) * pc.H + h) * D4 + i % D4] * pc.scale : vec4(0.0);
    }

    float m[RQ], l[RQ];
    vec4 acc[RQ * NVT];
    uint lim[RQ]; /* last key row i may see */
    [[unroll]] for (uint i = 0; i < RQ; i++) {
        m[i] = NEG_INF;
        l[i] = 0.0;
        lim[i] = min(pc.p0 + i0 + grp * RQ + i, kend - 1u);
    }
    [[unroll]] for (uint i = 0; i < RQ * NVT; i++)
        acc[i] = vec4(0.0);

    uvec4 pk[LPT], pv[LPT];
    [[unroll]] for (uint k = 0; k < LPT; k++) {
        const uint idx = t + k * WG, row = idx / NU, j = row;
        const bool ok = idx < BK * NU && j < kend;
        const uint g = j * rowu + kvh * NU + idx % NU;
        pk[k] = ok ? kc[g] : uvec4(0);
        pv[k] = ok ? vc[g] : uvec4(0);
    }

    for (uint jt = 0; jt < kend; jt += BK) {
        barrier(); /* the previous tile's readers of sK, sV, sS are done */
        [[unroll]] for (uint k = 0; k < LPT; k++) {
            const uint idx = t + k * WG;
            if (idx < BK * NU) {
                const uint row = idx / NU, v4 = (idx % NU) * (EPU / 4);
                vec4 lo, hi;
                unpack_unit(pk[k], lo, hi);
                sK[row * KS + v4] = lo;
                if (KV_F16)
                    sK[row * KS + v4 + 1] = hi;
                unpack_unit(pv[k], lo, hi);
                sV[row * D4 + v4] = lo;
                if (KV_F16)
                    sV[row * D4 + v4 + 1] = hi;
            }
        }
        barrier();
        /* the next tile into registers while this one is computed */
        if (jt + BK < kend) {
            [[unroll]] for (uint k = 0; k < LPT; k++) {
                const uint idx = t + k * WG, j = jt + BK + idx / NU;
                const bool ok = idx < BK * NU && j < kend;
                const uint g = j * rowu + kvh * NU + idx % NU;
                pk[k] = ok ? kc[g] : uvec4(0);
                pv[k] = ok ? vc[g] : uvec4(0);
            }
        }

        /* S */
        float s[RQ * RK];
        [[unroll]] for (uint i = 0; i < RQ * RK; i++)
            s[i] = 0.0;
        for (uint u = 0; u < D4; u++) {
            vec4 kv[RK];
            [[unroll]] for (uint k = 0; k < RK; k++)
                kv[k] = sK[(c + 8u * k) * KS + u];
            [[unroll]] for (uint i = 0; i < RQ; i++) {
                const vec4 qv = sQ[(grp * RQ + i) * D4 + u];
                [[unroll]] for (uint k = 0; k < RK; k++)
                    s[i * RK + k] += dot(qv, kv[k]);
            }
        }
        [[unroll]] for (uint i = 0; i < RQ; i++)
            [[unroll]] for (uint k = 0; k < RK; k++) {
                const uint j = jt + c + 8u * k;
                sS[(grp * RQ + i) * SS + c + 8u * k] = j > lim[i] ? NEG_INF : s[i * RK + k];
            }
        barrier();

        /* softmax: tile max and rescale */
        [[unroll]] for (uint i = 0; i < RQ; i++) {
            const uint so = (grp * RQ + i) * SS;
            vec4 mx4 = vec4(NEG_INF);
            for (uint j = 0; j < BK; j += 4)
                mx4 = max(mx4, vec4(sS[so + j], sS[so + j + 1], sS[so + j + 2], sS[so + j + 3]));
            const float mn = max(m[i], max(max(mx4.x, mx4.y), max(mx4.z, mx4.w)));
            const float alpha = m[i] == NEG_INF ? 0.0 : exp2(m[i] - mn);
            m[i] = mn;
            l[i] *= alpha;
            [[unroll]] for (uint k = 0; k < NVT; k++)
                acc[i * NVT + k] *= alpha;
        }

        /* PV */
        for (uint j = 0; j < BK; j++) {
            float p[RQ];
            [[unroll]] for (uint i = 0; i < RQ; i++) {
                const float sv = sS[(grp * RQ + i) * SS + j];
                p[i] = sv == NEG_INF ? 0.0 : exp2(sv - m[i]);
                l[i] += p[i];
            }
            [[unroll]] for (uint k = 0; k < NVT; k++) {
                const vec4 v = sV[j * D4 + c + 8u * k];
                [[unroll]] for (uint i = 0; i < RQ; i++)
                    acc[i * NVT + k] = fma(vec4(p[i]), v, acc[i * NVT + k]);
            }
        }
    }

    [[unroll]] for (uint i = 0; i < RQ; i++) {
        const uint r = grp * RQ + i;
        if (r < nv) {
            const float inv = l[i] > 0.0 ? 1.0 / l[i] : 0.0;
            const uint ob = ((i0 + r) * pc.H + h) * D4;
            [[unroll]] for (uint k = 0; k < NVT; k++)
                o[ob + c + 8u * k] = acc[i * NVT + k] * inv;
        }
    }
}

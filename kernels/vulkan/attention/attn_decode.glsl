/* Decode attention, pass 1 of split-KV flash decoding, direct variant (attn_decode.comp: the
 * default of attn_vk.c; pass 2 is attn_decode_combine.comp). With DEC_PERSIST defined
 * (attn_decode_persist.comp, KB_VK_ATTN_DECODE=persistent) also pass 2, fused: see below. A workgroup owns one split (a range of positions) of one kv head
 * and GH of the query heads that read it, so every K/V row is read from memory once per GQA
 * group. It walks its positions in tiles of WG:
 *   A. thread t scores position t of the tile against the GH queries (the whole dot product
 *      over D: K row from memory in 16-byte units, q from shared memory, broadcast);
 *   M. the tile's max per head (subgroupMax, then the subgroups' maxima through shared
 *      memory), the online-softmax rescale alpha (0 while the old max is -inf), each thread's
 *      p = 2^(s - m) into shared memory and the tile's sum of p (subgroupAdd, then shared);
 *   B. thread (lane r, unit c) accumulates p * V over the positions r, r + R, ... of the tile
 *      for the EPU dimensions of 16-byte unit c of V and all GH heads.
 * Two barriers per tile; the R position lanes' accumulators are summed through shared memory
 * once at the end. The split's record per head is (m, l) and the unnormalised o[D].
 * Scores are in log2 units: q is scaled by log2(e) / sqrt(D) when loaded (pc.scale).
 * Correct for any subgroup size: subgroups only reduce within themselves, and their results
 * meet in shared memory slots indexed by gl_SubgroupID (at most WG / SG_MIN of them).
 * K/V in f16 are read as 32-bit words and unpacked (no 16-bit storage feature needed).
 * DEC_PERSIST: a fixed grid of pc.nwg workgroups walks the items (split, cell = kv head and
 * head chunk) i = workgroup, workgroup + nwg, ...; after writing an item's records, the
 * workgroup counts it in its cell's counter (binding 6), and the one that brings the count to
 * nsplit merges the cell's records into O (binding 5) as attn_decode_combine.comp would, then
 * sets the counter back to 0 for the next run. No second dispatch, no barrier between passes;
 * nothing waits on another workgroup, so any grid size is safe. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;   /* threads; also positions per tile */
layout(constant_id = 1) const uint SG_MIN = 8; /* smallest subgroup size the device may use */
layout(constant_id = 2) const uint D = 128;    /* head size */
layout(constant_id = 3) const uint GH = 4;     /* query heads per workgroup */
layout(constant_id = 4) const bool KV_F16 = true;

const uint EPU = KV_F16 ? 8u : 4u; /* cache elements per 16-byte unit */
const uint NU = D / EPU;           /* units per cache row */
const uint R = WG / NU;            /* position lanes in phase B */
const uint D4 = D / 4;
const uint NSG = WG / SG_MIN;
#define NEG_INF uintBitsToFloat(0xFF800000u)

layout(std430, binding = 0) readonly buffer Qb { vec4 q[]; };          /* [H][D/4] */
layout(std430, binding = 1) readonly buffer Kb { uvec4 kc[]; };        /* [T][Hkv][NU] */
layout(std430, binding = 2) readonly buffer Vb { uvec4 vc[]; };        /* [T][Hkv][NU] */
#ifdef DEC_PERSIST
/* read back by another workgroup: coherent (device-scope visibility), ordered by
 * memoryBarrierBuffer around the counter */
#define DEC_REC coherent
#else
#define DEC_REC writeonly
#endif
layout(std430, binding = 3) DEC_REC buffer Ab { vec4 part_o[]; };      /* [H][nsplit][D/4] */
layout(std430, binding = 4) DEC_REC buffer Mb { vec2 part_ml[]; };     /* [H][nsplit] */
#ifdef DEC_PERSIST
layout(std430, binding = 5) writeonly buffer Ob { vec4 out_o[]; };     /* [H][D/4] */
layout(std430, binding = 6) coherent buffer Cb { uint arrived[]; };    /* [cells], 0 between runs */
#endif

layout(push_constant) uniform PC {
    uint T;         /* positions */
    uint hkv;       /* kv heads */
    uint G;         /* query heads per kv head */
    uint split_len; /* positions per split (a multiple of WG) */
    uint nsplit;
    uint nhc;       /* head chunks per kv head: ceil(G / GH) */
    float scale;    /* log2(e) / sqrt(D) */
#ifdef DEC_PERSIST
    uint nitems;    /* nsplit * hkv * nhc */
    uint nwg;       /* workgroups of the grid */
#endif
} pc;

shared vec4 sq[GH * D4];      /* scaled queries */
shared float sp[WG * GH];     /* p of the tile: [position][head] */
shared float rmax[NSG * GH];  /* per subgroup: max of s */
shared float rsum[NSG * GH];  /* per subgroup: sum of p */
shared vec4 sred[WG * EPU / 4]; /* [R][D/4] partial o of the position lanes */

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

#ifdef DEC_PERSIST
shared bool s_last;
shared float sl[WG];

/* Called by the whole workgroup after it wrote its records of split `split` for heads
 * h0 .. h0 + nh - 1 of cell `cell`. The last of the cell's nsplit workgroups merges them: per
 * head, M = max m_s, w_s = 2^(m_s - M) (0 where m_s = -inf), o = sum w_s o_s / sum w_s l_s;
 * thread (lane, unit) sums every (WG / D4)-th split of one vec4 unit, the lanes meet in sred. */
void combine_if_last(uint cell, uint h0, uint nh)
{
    const uint t = gl_LocalInvocationID.x;
    memoryBarrierBuffer(); /* this thread's records before the count */
    barrier();
    if (t == 0u) {
        memoryBarrierBuffer();
        s_last = atomicAdd(arrived[cell], 1u) == pc.nsplit - 1u;
    }
    barrier();
    if (!s_last) /* uniform */
        return;
    memoryBarrierBuffer(); /* the other workgroups' records after the count */
    const uint NL = WG / D4, u = t % D4, ln = t / D4;
    for (uint h = 0; h < nh; h++) {
        const uint rec0 = (h0 + h) * pc.nsplit;
        float M = NEG_INF;
        for (uint s = t; s < pc.nsplit; s += WG)
            M = max(M, part_ml[rec0 + s].x);
        M = subgroupMax(M);
        if (subgroupElect())
            rmax[gl_SubgroupID] = M;
        barrier();
        M = NEG_INF;
        for (uint g = 0; g < gl_NumSubgroups; g++)
            M = max(M, rmax[g]);
        vec4 acc = vec4(0.0);
        float L = 0.0;
        for (uint s0 = ln; s0 < pc.nsplit; s0 += 4u * NL) {
            [[unroll]] for (uint k = 0; k < 4u; k++) { /* four loads in flight */
                const uint s = s0 + k * NL;
                if (s < pc.nsplit) {
                    const vec2 ml = part_ml[rec0 + s];
                    const float w = ml.x == NEG_INF ? 0.0 : exp2(ml.x - M);
                    L += w * ml.y;
                    acc += w * part_o[(rec0 + s) * D4 + u];
                }
            }
        }
        sred[ln * D4 + u] = acc;
        sl[t] = L;
        barrier();
        if (ln == 0u) {
            for (uint r = 1; r < NL; r++) {
                acc += sred[r * D4 + u];
                L += sl[r * D4];
            }
            out_o[(h0 + h) * D4 + u] = L > 0.0 ? acc * (1.0 / L) : vec4(0.0);
        }
        barrier(); /* rmax, sred, sl are reused by the next head or item */
    }
    if (t == 0u)
        arrived[cell] = 0u; /* every split has arrived: ready for the next run */
}
#endif

void main()
{
    const uint t = gl_LocalInvocationID.x;
#ifdef DEC_PERSIST
    for (uint item = gl_WorkGroupID.x; item < pc.nitems; item += pc.nwg) {
        const uint split = item % pc.nsplit, cell = item / pc.nsplit;
        barrier(); /* the previous item's readers of sq are done */
#else
    { /* one item: split gl_WorkGroupID.x of cell gl_WorkGroupID.y */
        const uint split = gl_WorkGroupID.x, cell = gl_WorkGroupID.y;
#endif
        const uint kvh = cell / pc.nhc, hc = cell % pc.nhc;
        const uint h0 = kvh * pc.G + hc * GH;       /* first query head of this workgroup */
        const uint nh = min(GH, pc.G - hc * GH);    /* heads of it that exist */
        const uint j0 = split * pc.split_len, j1 = min(pc.T, j0 + pc.split_len);
        const uint rowu = pc.hkv * NU;              /* units from one position to the next */

        for (uint i = t; i < GH * D4; i += WG) {
            const uint h = i / D4;
            sq[i] = h < nh ? q[(h0 + h) * D4 + i % D4] * pc.scale : vec4(0.0);
        }
        barrier();

        float m[GH], l[GH], acc[GH * EPU];
        [[unroll]] for (uint h = 0; h < GH; h++) {
            m[h] = NEG_INF;
            l[h] = 0.0;
        }
        [[unroll]] for (uint i = 0; i < GH * EPU; i++)
            acc[i] = 0.0;
        const uint cu = t % NU, lane = t / NU; /* phase B: unit, position lane */

        for (uint jt = j0; jt < j1; jt += WG) {
            /* A: scores of position jt + t */
            const uint j = jt + t;
            float sc[GH];
            [[unroll]] for (uint h = 0; h < GH; h++)
                sc[h] = 0.0;
            if (j < j1) {
                const uint base = j * rowu + kvh * NU;
                for (uint u0 = 0; u0 < NU; u0 += 8) {
                    uvec4 kb[8];
                    [[unroll]] for (uint i = 0; i < 8; i++)
                        kb[i] = kc[base + u0 + i];
                    [[unroll]] for (uint i = 0; i < 8; i++) {
                        vec4 lo, hi;
                        unpack_unit(kb[i], lo, hi);
                        const uint qi = (u0 + i) * (EPU / 4);
                        [[unroll]] for (uint h = 0; h < GH; h++) {
                            float s = sc[h] + dot(sq[h * D4 + qi], lo);
                            if (KV_F16)
                                s += dot(sq[h * D4 + qi + 1], hi);
                            sc[h] = s;
                        }
                    }
                }
            } else {
                [[unroll]] for (uint h = 0; h < GH; h++)
                    sc[h] = NEG_INF;
            }

            /* M: tile max, rescale, p */
            [[unroll]] for (uint h = 0; h < GH; h++) {
                const float mx = subgroupMax(sc[h]);
                if (subgroupElect())
                    rmax[gl_SubgroupID * GH + h] = mx;
            }
            barrier();
            float alpha[GH];
            [[unroll]] for (uint h = 0; h < GH; h++) {
                float mt = NEG_INF;
                for (uint g = 0; g < gl_NumSubgroups; g++)
                    mt = max(mt, rmax[g * GH + h]);
                const float mn = max(m[h], mt);
                alpha[h] = m[h] == NEG_INF ? 0.0 : exp2(m[h] - mn);
                m[h] = mn;
                const float p = sc[h] == NEG_INF ? 0.0 : exp2(sc[h] - mn);
                sp[t * GH + h] = p;
                const float ps = subgroupAdd(p);
                if (subgroupElect())
                    rsum[gl_SubgroupID * GH + h] = ps;
            }
            barrier();
            [[unroll]] for (uint h = 0; h < GH; h++) {
                float ls = 0.0;
                for (uint g = 0; g < gl_NumSubgroups; g++)
                    ls += rsum[g * GH + h];
                l[h] = l[h] * alpha[h] + ls;
                [[unroll]] for (uint e = 0; e < EPU; e++)
                    acc[h * EPU + e] *= alpha[h];
            }

            /* B: o += p V over this lane's positions (NU of them: WG / R) */
            for (uint k0 = 0; k0 < NU; k0 += 8) {
                uvec4 vb[8];
                [[unroll]] for (uint i = 0; i < 8; i++) {
                    const uint jj = lane + R * (k0 + i), jp = jt + jj;
                    vb[i] = jp < j1 ? vc[jp * rowu + kvh * NU + cu] : uvec4(0);
                }
                [[unroll]] for (uint i = 0; i < 8; i++) {
                    const uint jj = lane + R * (k0 + i);
                    vec4 lo, hi;
                    unpack_unit(vb[i], lo, hi);
                    [[unroll]] for (uint h = 0; h < GH; h++) {
                        const float p = sp[jj * GH + h];
                        [[unroll]] for (uint e = 0; e < 4; e++)
                            acc[h * EPU + e] = fma(p, lo[e], acc[h * EPU + e]);
                        if (KV_F16) {
                            [[unroll]] for (uint e = 0; e < 4; e++)
                                acc[h * EPU + 4 + e] = fma(p, hi[e], acc[h * EPU + 4 + e]);
                        }
                    }
                }
            }
            /* No barrier here: the next tile writes rmax before its first barrier (everyone has
             * read rmax before this tile's second one) and sp, rsum after it (everyone has
             * finished phase B by then). */
        }

        /* The position lanes' partial o summed per head, and the split's records written. */
        [[unroll]] for (uint h = 0; h < GH; h++) {
            if (h < nh) { /* uniform in the workgroup */
                [[unroll]] for (uint e4 = 0; e4 < EPU / 4; e4++)
                    sred[lane * D4 + cu * (EPU / 4) + e4] =
                        vec4(acc[h * EPU + 4 * e4], acc[h * EPU + 4 * e4 + 1],
                             acc[h * EPU + 4 * e4 + 2], acc[h * EPU + 4 * e4 + 3]);
                barrier();
                const uint rec = (h0 + h) * pc.nsplit + split;
                for (uint i = t; i < D4; i += WG) {
                    vec4 o = vec4(0.0);
                    for (uint r = 0; r < R; r++)
                        o += sred[r * D4 + i];
                    part_o[rec * D4 + i] = o;
                }
                if (t == 0)
                    part_ml[rec] = vec2(m[h], l[h]);
                barrier();
            }
        }
#ifdef DEC_PERSIST
        combine_if_last(cell, h0, nh);
#endif
    }
}

/* Flash attention on cooperative matrices (16x16x16 products of f16 operands with f32
 * accumulation, subgroup scope), for attn_prefill and attn_decode (attn_cm_vk.c). One source for
 * two extensions: attn_cm.coopmat.comp includes it as GL_NV_cooperative_matrix, and
 * attn_cm_khr.coopmat_khr.comp, with CM_KHR defined, as GL_KHR_cooperative_matrix (the macros
 * below: KHR types name their operand use, A, B or accumulator, and its loads take a layout
 * constant; KHR converts only between matrices of one use, so Q reaches its A fragments through
 * shared memory as f16, not as a converted f32 accumulator). Same math and memory layout.
 *
 * Rows: the queries of one kv head are taken G at a time, row r = (query r / G, head
 * kvh * G + r % G), so one K/V tile serves the whole GQA group (decode: the G heads of the one
 * query fill G of 16 rows). A subgroup owns 16 rows, a workgroup NR subgroups:
 *   prefill: NR neighbouring row blocks (the longest first), over the same keys;
 *   decode (SPLIT): the same rows, each subgroup a quarter (1/NR) of every tile of the
 *     workgroup's key range, leaving its own record (m, l, o), merged by
 *     attn_decode_combine.comp with the other ranges' records.
 * Per tile of TK keys (TK = BK, or NR * BK when SPLIT):
 *   the workgroup stages K and V as f16 in shared memory (16-byte coalesced loads; an f32 cache
 *     is converted there); with PREFETCH, the next tile is loaded into registers while this one
 *     is computed (where registers allow: decode relies on other workgroups instead);
 *   S = Q K^T (Q: f16, scaled by log2(e) / sqrt(D), as fragments in registers or, with
 *     Q_SHARED, in shared memory: one copy per workgroup when SPLIT), stored to shared
 *     memory; lane (row, part) reads its row's vec4 columns part, part + LPR, ... (subgroups
 *     of 8: lane takes rows lane and lane + 8 whole); masks keys past the row's causal limit
 *     or the range's end; the row max over the LPR lanes by shuffles. The reference max m moves only when a score exceeds it by more than TH (log2
 *     units): p = 2^(s - m) <= 2^TH stays exact in f16 and f32 sums, and the O accumulators,
 *     which a row-wise rescale has to round-trip through shared memory, are rescaled only on
 *     those tiles (mostly the first); the result does not depend on m;
 *   P (f16) to shared memory, O += P V.
 * The end: O / l per row to O (prefill), or the unnormalised O and (m, l) (decode).
 * Key rows past T may be read (whole tiles): attn_cm_vk.c pads K and V with TK zero rows.
 * Shared arrays are uvec4 arrays (8 halves or 4 floats; the matrix loads accept uint types):
 * cooperative-matrix offsets and strides count 16-byte units.
 * Needs a subgroup size of 8 to 64 (LPR = SGS / 16 lanes per row, or RPL = 2 rows per lane at 8:
 * lavapipe runs the KHR variant with subgroups of 8). */
#ifdef CM_KHR
#extension GL_KHR_cooperative_matrix : require
#else
#extension GL_NV_cooperative_matrix : require
#endif
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;  /* NR * SGS */
layout(constant_id = 1) const uint NR = 4;    /* subgroups per workgroup */
layout(constant_id = 2) const uint SGS = 32;  /* the device's subgroup size */
layout(constant_id = 3) const uint D = 128;   /* head size, a multiple of 16 */
layout(constant_id = 4) const uint BK = 32;   /* keys per subgroup and tile, a multiple of 16 */
layout(constant_id = 5) const bool KV_F16 = true;
layout(constant_id = 6) const bool SPLIT = false;
layout(constant_id = 7) const float TH = 8.0; /* lazy-rescale threshold (tests set 0) */
layout(constant_id = 8) const bool PREFETCH = true; /* next tile into registers (costs LPT * 8) */
layout(constant_id = 9) const bool Q_SHARED = false; /* Q fragments from shared memory, not
                                                        registers (D = 256: 64 registers) */

#ifdef CM_KHR
#define ACC coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>
#define F16A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define F16B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define CM_LOAD coopMatLoad
#define CM_STORE coopMatStore
#define CM_MULADD coopMatMulAdd
#define CM_ROW gl_CooperativeMatrixLayoutRowMajor
#define CM_COL gl_CooperativeMatrixLayoutColumnMajor
#else
#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define F16A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define F16B F16A
#define CM_LOAD coopMatLoadNV
#define CM_STORE coopMatStoreNV
#define CM_MULADD coopMatMulAddNV
#define CM_ROW false /* NV: the column-major flag */
#define CM_COL true
#endif
#define NEG_INF uintBitsToFloat(0xFF800000u)

const uint ND = D / 16, NKB = BK / 16;
const uint TK = SPLIT ? NR * BK : BK; /* keys staged per tile */
const uint NU = D / 8;                /* 16-byte f16 units per cache row */
const uint LPT = (TK * NU + WG - 1u) / WG; /* units each thread stages per tile (K and V) */
const uint LPR = SGS >= 16u ? SGS / 16u : 1u; /* lanes per row in the softmax */
const uint RPL = SGS >= 16u ? 1u : 16u / SGS; /* rows per lane in it */
const uint RS = SGS / LPR;            /* from a lane's row to its next (RPL > 1) */
const uint CPL4 = BK / (4u * LPR);    /* vec4 columns per lane */
const uint KS8 = (D + 8u) / 8u;       /* row strides in 16-byte units, padded against bank */
const uint SS4 = BK / 4u + LPR;       /* conflicts */
const uint PS8 = (BK + 8u) / 8u;

layout(std430, binding = 0) readonly buffer Qb { float q[]; };     /* [n_q][H][D] */
layout(std430, binding = 1) readonly buffer Kb { uvec4 kc[]; };    /* [T + TK][Hkv][D] */
layout(std430, binding = 2) readonly buffer Vb { uvec4 vc[]; };
layout(std430, binding = 3) writeonly buffer Ob { float o[]; };    /* O, or split records */
layout(std430, binding = 4) writeonly buffer Mb { vec2 part_ml[]; }; /* [H][nrec] */

layout(push_constant) uniform PC {
    uint n_q;
    uint p0;
    uint T;
    uint H;
    uint hkv;
    uint G;
    uint nrows;     /* n_q * G */
    uint nblk;      /* ceil(nrows / 16) */
    uint nsplit;    /* key ranges (1 unless SPLIT) */
    uint split_len; /* keys per range, a multiple of TK */
    float scale;    /* log2(e) / sqrt(D) */
} pc;

shared uvec4 sK[TK * KS8];       /* f16 */
shared uvec4 sV[TK * KS8];
shared uvec4 sS[NR * 16u * SS4]; /* f32 */
shared uvec4 sP[NR * 16u * PS8]; /* f16 */
const uint NQ = Q_SHARED ? (SPLIT ? 1u : NR) : 0u; /* Q row blocks in shared memory */
const uint SQ_LEN = NQ > 0u ? NQ * 16u * KS8 : 1u;   /* (1 unused unit without Q_SHARED) */
shared uvec4 sQ[SQ_LEN];                             /* f16 */
shared float sR[NR * 16u]; /* per row: alpha, then 1 / l */

void sg_sync()
{
    subgroupMemoryBarrierShared();
    subgroupBarrier();
}

/* 8 cache elements from position j, dimensions 8c .. 8c+7, as f16 */
void fetch(uint j, uint c, uint kvh, out uvec4 k, out uvec4 v)
{
    const uint e = (j * pc.hkv + kvh) * D + c * 8u;
    if (KV_F16) {
        k = kc[e / 8u];
        v = vc[e / 8u];
    } else {
        const uvec4 k0 = kc[e / 4u], k1 = kc[e / 4u + 1u];
        const uvec4 v0 = vc[e / 4u], v1 = vc[e / 4u + 1u];
        k = uvec4(packHalf2x16(uintBitsToFloat(k0.xy)), packHalf2x16(uintBitsToFloat(k0.zw)),
                  packHalf2x16(uintBitsToFloat(k1.xy)), packHalf2x16(uintBitsToFloat(k1.zw)));
        v = uvec4(packHalf2x16(uintBitsToFloat(v0.xy)), packHalf2x16(uintBitsToFloat(v0.zw)),
                  packHalf2x16(uintBitsToFloat(v1.xy)), packHalf2x16(uintBitsToFloat(v1.zw)));
    }
}

/* prefill: task i of the grid takes row block nblk - 1 - i (the longest first); past the
 * end, a block with no rows */
uint blk_of(uint task) { return task < pc.nblk ? pc.nblk - 1u - task : pc.nblk; }

void main()
{
    const uint t = gl_LocalInvocationID.x;
    const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint kvh = gl_WorkGroupID.y;
    /* rows and keys of this subgroup */
    uint blk, split, blk_wg;
    if (SPLIT) {
        blk = gl_WorkGroupID.x / pc.nsplit;
        split = gl_WorkGroupID.x % pc.nsplit;
        blk_wg = blk;
    } else {
        const uint task = gl_WorkGroupID.x * NR + sg; /* past the end: no rows, keeps barriers */
        blk = blk_of(task);
        split = 0u;
        blk_wg = pc.nblk - 1u - gl_WorkGroupID.x * NR; /* the workgroup's last rows */
    }
    const uint r0 = blk * 16u;
    const uint j0 = split * pc.split_len, j1 = min(pc.T, j0 + pc.split_len);
    const uint kend = min(j1, pc.p0 + min(blk_wg * 16u + 15u, pc.nrows - 1u) / pc.G + 1u);
    const uint kfull = r0 < pc.nrows ? min(j1, pc.p0 + r0 / pc.G + 1u) : 0u;
    const uint koff = SPLIT ? sg * BK : 0u; /* this subgroup's keys within a tile */
    const uint sb = sg * 16u * SS4, pb = sg * 16u * PS8, rb = sg * 16u;

    /* Q: with Q_SHARED, the workgroup stages its row block(s) as scaled f16 (8 values per
     * thread and step); else each subgroup loads all of its lane's Q values first (one memory
     * latency, not ND), then each 16x16 f32 block goes through its sS, to f16, scaled */
    const uint qbase = SPLIT ? 0u : sg * 16u * KS8; /* this subgroup's block in sQ */
    F16A qa[Q_SHARED ? 1 : ND];
    if (Q_SHARED) {
        for (uint u = t; u < NQ * 16u * NU; u += WG) {
            const uint b = u / (16u * NU), r = (u / NU) % 16u, c = u % NU;
            const uint rb0 = SPLIT ? r0 : blk_of(gl_WorkGroupID.x * NR + b) * 16u;
            const uint row = rb0 + r;
            vec4 lo = vec4(0.0), hi = vec4(0.0);
            if (row < pc.nrows) {
                const uint h = kvh * pc.G + row % pc.G;
                const uint e = ((row / pc.G) * pc.H + h) * D + c * 8u;
                lo = vec4(q[e], q[e + 1u], q[e + 2u], q[e + 3u]) * pc.scale;
                hi = vec4(q[e + 4u], q[e + 5u], q[e + 6u], q[e + 7u]) * pc.scale;
            }
            sQ[(b * 16u + r) * KS8 + c] = uvec4(packHalf2x16(lo.xy), packHalf2x16(lo.zw),
                                               packHalf2x16(hi.xy), packHalf2x16(hi.zw));
        }
        barrier();
    } else {
        const uint QPL = 256u / SGS; /* values per lane and block */
        float qv[ND * QPL];
        [[unroll]] for (uint d = 0; d < ND; d++) {
            [[unroll]] for (uint k = 0; k < QPL; k++) {
                const uint e = lane + k * SGS, r = e / 16u, row = r0 + r;
                float x = 0.0;
                if (row < pc.nrows) {
                    const uint h = kvh * pc.G + row % pc.G;
                    x = q[((row / pc.G) * pc.H + h) * D + d * 16u + e % 16u];
                }
                qv[d * QPL + k] = x;
            }
        }
        [[unroll]] for (uint d = 0; d < ND; d++) {
#ifdef CM_KHR
            /* f16 rows of 16 (two units) in sS: element e + 1 of an even e is lane + 1's */
            [[unroll]] for (uint k = 0; k < QPL; k++) {
                const uint e = lane + k * SGS, c = e % 16u;
                const float xn = subgroupShuffleXor(qv[d * QPL + k], 1u);
                if (e % 2u == 0u)
                    sS[sb + (e / 16u) * SS4 + c / 8u][(c / 2u) % 4u] =
                        packHalf2x16(vec2(qv[d * QPL + k], xn) * pc.scale);
            }
            sg_sync();
            CM_LOAD(qa[d], sS, sb, SS4, CM_ROW);
#else
            [[unroll]] for (uint k = 0; k < QPL; k++) {
                const uint e = lane + k * SGS, c = e % 16u;
                sS[sb + (e / 16u) * SS4 + c / 4u][c % 4u] = floatBitsToUint(qv[d * QPL + k]);
            }
            sg_sync();
            ACC qf;
            CM_LOAD(qf, sS, sb, SS4, CM_ROW);
            qa[d] = F16A(qf * pc.scale);
#endif
            sg_sync();
        }
    }

    /* this lane's row(s) in the softmax: row0 + rr * RS, rr < RPL; each row's key limit */
    const uint row0 = lane / LPR, part = lane % LPR;
    uint jend[RPL];
    float m[RPL], l[RPL];
    [[unroll]] for (uint rr = 0; rr < RPL; rr++) {
        const uint grow = r0 + row0 + rr * RS;
        jend[rr] = grow < pc.nrows ? min(j1, pc.p0 + grow / pc.G + 1u) : 0u;
        m[rr] = NEG_INF;
        l[rr] = 0.0;
    }
    ACC acc[ND];
    [[unroll]] for (uint d = 0; d < ND; d++)
        acc[d] = ACC(0.0);

    uvec4 pk[LPT], pv[LPT];
    if (PREFETCH) {
        [[unroll]] for (uint k = 0; k < LPT; k++) {
            const uint idx = t + k * WG;
            if (idx < TK * NU && j0 < kend)
                fetch(j0 + idx / NU, idx % NU, kvh, pk[k], pv[k]);
        }
    }

    for (uint jt = j0; jt < kend; jt += TK) {
        if (!PREFETCH) {
            [[unroll]] for (uint k = 0; k < LPT; k++) {
                const uint idx = t + k * WG;
                if (idx < TK * NU)
                    fetch(jt + idx / NU, idx % NU, kvh, pk[k], pv[k]);
            }
        }
        barrier(); /* the previous tile's readers of sK, sV are done */
        [[unroll]] for (uint k = 0; k < LPT; k++) {
            const uint idx = t + k * WG;
            if (idx < TK * NU) {
                const uint a = (idx / NU) * KS8 + idx % NU;
                sK[a] = pk[k];
                sV[a] = pv[k];
            }
        }
        barrier();
        if (PREFETCH && jt + TK < kend) {
            [[unroll]] for (uint k = 0; k < LPT; k++) {
                const uint idx = t + k * WG;
                if (idx < TK * NU)
                    fetch(jt + TK + idx / NU, idx % NU, kvh, pk[k], pv[k]);
            }
        }
        const uint js = jt + koff; /* this subgroup's first key */

        /* S = Q K^T */
        ACC s[NKB];
        [[unroll]] for (uint kb = 0; kb < NKB; kb++)
            s[kb] = ACC(0.0);
        [[unroll]] for (uint d = 0; d < ND; d++) {
            F16A qd;
            if (Q_SHARED)
                CM_LOAD(qd, sQ, qbase + d * 2u, KS8, CM_ROW);
            else
                qd = qa[d];
            [[unroll]] for (uint kb = 0; kb < NKB; kb++) {
                F16B kt;
                CM_LOAD(kt, sK, (koff + kb * 16u) * KS8 + d * 2u, KS8, CM_COL);
                s[kb] = CM_MULADD(qd, kt, s[kb]);
            }
        }
        [[unroll]] for (uint kb = 0; kb < NKB; kb++)
            CM_STORE(s[kb], sS, sb + kb * 4u, SS4, CM_ROW);
        sg_sync();

        /* softmax: row max, lazy reference max, p */
        const bool masked = js + BK > kfull;
        float alpha[RPL];
        bool rescale = false;
        [[unroll]] for (uint rr = 0; rr < RPL; rr++) {
            const uint row = row0 + rr * RS;
            vec4 sv[CPL4];
            float mx = NEG_INF;
            [[unroll]] for (uint k = 0; k < CPL4; k++) {
                const uint c4 = part + LPR * k;
                vec4 x = uintBitsToFloat(sS[sb + row * SS4 + c4]);
                if (masked) {
                    const uint j = js + 4u * c4, je = jend[rr];
                    x = vec4(j < je ? x.x : NEG_INF, j + 1u < je ? x.y : NEG_INF,
                             j + 2u < je ? x.z : NEG_INF, j + 3u < je ? x.w : NEG_INF);
                }
                sv[k] = x;
                mx = max(mx, max(max(x.x, x.y), max(x.z, x.w)));
            }
            [[unroll]] for (uint x = 1; x < LPR; x <<= 1)
                mx = max(mx, subgroupShuffleXor(mx, x));
            alpha[rr] = 1.0;
            if (mx > m[rr] + TH) { /* m = -inf: any finite mx; O and l are still 0 then */
                if (m[rr] != NEG_INF)
                    alpha[rr] = exp2(m[rr] - mx);
                m[rr] = mx;
            }
            float ps = 0.0;
            [[unroll]] for (uint k = 0; k < CPL4; k++) {
                const vec4 x = sv[k];
                /* a masked score is -inf; m is finite wherever any score is not */
                const vec4 p = m[rr] == NEG_INF ? vec4(0.0) : exp2(x - m[rr]);
                ps += (p.x + p.y) + (p.z + p.w);
                const uint c4 = part + LPR * k, a = pb + row * PS8 + c4 / 2u;
                const uvec2 w =
                    uvec2(packFloat2x16(f16vec2(p.xy)), packFloat2x16(f16vec2(p.zw)));
                if (c4 % 2u == 0u)
                    sP[a].xy = w;
                else
                    sP[a].zw = w;
            }
            [[unroll]] for (uint x = 1; x < LPR; x <<= 1)
                ps += subgroupShuffleXor(ps, x);
            l[rr] = l[rr] * alpha[rr] + ps;
            rescale = rescale || alpha[rr] != 1.0;
        }

        /* the rare rescale of O, through shared memory (sS is free once read) */
        if (subgroupAny(rescale)) {
            if (part == 0u) {
                [[unroll]] for (uint rr = 0; rr < RPL; rr++)
                    sR[rb + row0 + rr * RS] = alpha[rr];
            }
            sg_sync();
            [[unroll]] for (uint d = 0; d < ND; d++) {
                CM_STORE(acc[d], sS, sb, SS4, CM_ROW);
                sg_sync();
                for (uint e = lane; e < 64u; e += SGS) {
                    const uint a = sb + (e / 4u) * SS4 + e % 4u;
                    sS[a] = floatBitsToUint(uintBitsToFloat(sS[a]) * sR[rb + e / 4u]);
                }
                sg_sync();
                CM_LOAD(acc[d], sS, sb, SS4, CM_ROW);
                sg_sync();
            }
        }
        sg_sync();

        /* O += P V */
        F16A pa[NKB];
        [[unroll]] for (uint kb = 0; kb < NKB; kb++)
            CM_LOAD(pa[kb], sP, pb + kb * 2u, PS8, CM_ROW);
        [[unroll]] for (uint d = 0; d < ND; d++) {
            [[unroll]] for (uint kb = 0; kb < NKB; kb++) {
                F16B vt;
                CM_LOAD(vt, sV, (koff + kb * 16u) * KS8 + d * 2u, KS8, CM_ROW);
                acc[d] = CM_MULADD(pa[kb], vt, acc[d]);
            }
        }
        sg_sync(); /* pa is read before the next tile's S overwrites sS and sP */
    }

    /* the end: per row 1 / l (prefill) or the record (m, l) (decode) */
    const uint nrec = pc.nsplit * NR, rec = split * NR + sg;
    if (part == 0u) {
        [[unroll]] for (uint rr = 0; rr < RPL; rr++) {
            const uint row = row0 + rr * RS, grow = r0 + row;
            if (SPLIT) {
                if (grow < pc.nrows)
                    part_ml[(kvh * pc.G + grow) * nrec + rec] = vec2(m[rr], l[rr]);
            } else {
                sR[rb + row] = l[rr] > 0.0 ? 1.0 / l[rr] : 0.0;
            }
        }
    }
    [[unroll]] for (uint d = 0; d < ND; d++) {
        CM_STORE(acc[d], sS, sb, SS4, CM_ROW);
        sg_sync();
        for (uint e = lane; e < 256u; e += SGS) {
            const uint r = e / 16u, c = e % 16u, gr = r0 + r;
            if (gr < pc.nrows) {
                const float x = uintBitsToFloat(sS[sb + r * SS4 + c / 4u][c % 4u]);
                const uint h = kvh * pc.G + gr % pc.G;
                if (SPLIT)
                    o[(h * nrec + rec) * D + d * 16u + c] = x;
                else
                    o[((gr / pc.G) * pc.H + h) * D + d * 16u + c] = x * sR[rb + r];
            }
        }
        sg_sync();
    }
}

/* MLX affine matvec (matvec_a8/a4/a2.comp) and bf16 matvec (matvec_bf16.comp); the includer
 * defines BITS (2, 4, 8; 16 = bf16). Host side: matvec_affine_vk.c.
 *
 * y[k][t][r] = sum_c W[m][r,c] x[k'][t][c], m = idx[k] (one matrix when experts = 0, then
 * idx = {0}), k' = k unless every expert reads the same x (pc.xk = 0).
 *
 * Layout (repacked by the host, the format's bytes per weight): a row is cut into chunks of 32
 * units of 16 bytes. Unit u = 32c + l holds GP = 32/BITS groups of 4 weights (bf16: 2): group k
 * covers x[4V .. 4V+3], V = 32*GP*c + 32k + l. So consecutive units hold consecutive x vec4s
 * for each k: 32 lanes read 512 contiguous bytes of codes and, per k, 512 contiguous bytes of x
 * (16-byte loads, no shared memory). Inside a unit, group k = (8/BITS) j + h is bit field h
 * (BITS wide) of the 4 bytes of word j, weight i in byte i: one shift and one mask give four
 * codes, one per byte. bf16: group k is words 2k, 2k+1 (4 weights, low half first).
 *
 * Scale and bias (bf16 each) of affine group 4V/G: the LG = G/4 lanes l with the same l / LG
 * share them for every k, so they are stored per (row, chunk, l / LG) as GP u32 words (scale in
 * the low half, bias in the high half), word k for group k: NSB = GP/4 uvec4 loads per lane,
 * the same address for the LG lanes of a lane group.
 *
 * Work split: a subgroup owns RPS rows at a time and its lanes stride over the units (any
 * subgroup size: units are numbered independently of it); the reduction is one subgroupAdd
 * per row and token, no barriers, no shared memory. Workgroup row y is the expert k: the
 * kernel reads m = idx[k] and the slot etab[m] of that matrix in this upload (the host uploads
 * only the matrices idx names; the lookup itself happens here, on the device). A subgroup
 * loads its next unit before computing the current one. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint RPS = 4;        /* rows a subgroup works on at once */
layout(constant_id = 2) const uint T = 1;          /* tokens */
layout(constant_id = 3) const bool PARTIAL = true; /* cols leaves a partial last chunk */
layout(constant_id = 4) const uint G = 64;         /* weights per scale and bias (affine) */

const bool AFFINE = BITS != 16;
#if BITS == 16
#define NSB 1 /* uvec4 of scale+bias words per lane and unit (bf16: none, a dummy) */
#else
#define NSB (8 / BITS)
#endif
const uint GP = 32 / BITS;         /* groups of 4 weights per unit */
const uint FPW = AFFINE ? 8 / BITS : 2; /* groups per word (bf16: 2 words per group) */
const uint LG = G / 4;             /* lanes sharing a scale and bias */
const uint NLG = 32 / LG;          /* lane groups per chunk */
const uint MASK = BITS == 8 ? 0xFFFFFFFFu : BITS == 4 ? 0x0F0F0F0Fu : 0x03030303u;

layout(std430, binding = 0) readonly buffer Qb { uvec4 q[]; };   /* [slot][row][unit] */
layout(std430, binding = 1) readonly buffer Sb { uvec4 sb[]; };  /* [slot][row][chunk][NLG][NSB] */
layout(std430, binding = 2) readonly buffer Xb { vec4 x[]; };    /* [K or 1][T][nv] */
layout(std430, binding = 3) writeonly buffer Yb { float y[]; };  /* [K][T][ystride] */
layout(std430, binding = 4) readonly buffer Ib { int idx[]; };   /* [K] */
layout(std430, binding = 5) readonly buffer Eb { uint etab[]; }; /* [E]: slot of matrix m */

layout(push_constant) uniform PC {
    uint rows;    /* rows of each matrix in this row chunk */
    uint nv;      /* vec4s in a row of x: cols / 4 */
    uint nchunk;  /* chunks per row */
    uint row0;    /* first row of this chunk in y */
    uint ystride; /* all rows */
    uint xk;      /* vec4s between the x of consecutive experts (0: shared x) */
    uint ne;      /* E: entries of etab */
} pc;

float acc[RPS * T]; /* [row][token] */

/* Four bytes (each < 256) of m to floats minus off: the byte becomes the low mantissa bits
 * of 2^23 (exact), subtracting 2^23 + off leaves byte - off (no int->float conversion). */
vec4 bytes4(uint m, float off)
{
    return uintBitsToFloat(uvec4(bitfieldInsert(0x4B000000u, m, 0, 8),
                                 bitfieldInsert(0x4B000000u, m >> 8, 0, 8),
                                 bitfieldInsert(0x4B000000u, m >> 16, 0, 8),
                                 (m >> 24) | 0x4B000000u)) - (8388608.0 + off);
}

/* Weights (affine: codes minus off) of group k of a unit. */
vec4 group_w(uvec4 cq, uint k, float off)
{
    if (!AFFINE) {
        uint a = cq[2 * k], b = cq[2 * k + 1];
        return uintBitsToFloat(uvec4(a << 16, a & 0xFFFF0000u, b << 16, b & 0xFFFF0000u));
    }
    uint w = cq[k / FPW];
    if (BITS != 8)
        w = (w >> (BITS * (k % FPW))) & MASK;
    return bytes4(w, off);
}

float fma4(vec4 a, vec4 b, float s)
{
    return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, s))));
}

/* x vec4 V of token t of expert xbase; zero past the end of the row (partial last chunk). */
vec4 xload(uint xbase, uint t, uint V)
{
    if (!PARTIAL)
        return x[xbase + t * pc.nv + V];
    vec4 v = x[xbase + t * pc.nv + min(V, pc.nv - 1)];
    return V < pc.nv ? v : vec4(0.0);
}

void load_unit(uint rbase, uint rg, uint u, out uvec4 cq[RPS], out uvec4 cs[RPS][NSB])
{
    const uint nu = pc.nchunk * 32u;
    [[unroll]] for (uint r = 0; r < RPS; r++) {
        uint row = rbase + min(rg * RPS + r, pc.rows - 1); /* rows past the end: not stored */
        cq[r] = q[row * nu + u];
        if (AFFINE) {
            uint s0 = ((row * pc.nchunk + (u >> 5)) * NLG + (u & 31u) / LG) * NSB;
            [[unroll]] for (uint j = 0; j < NSB; j++)
                cs[r][j] = sb[s0 + j];
        }
    }
}

void dot_unit(uint xbase, uint u, uvec4 cq[RPS], uvec4 cs[RPS][NSB])
{
    const uint c = u >> 5, l = u & 31u;
    [[unroll]] for (uint k = 0; k < GP; k++) {
        const uint V = c * 32u * GP + 32u * k + l;
        if (T == 1) {
            vec4 xv = xload(xbase, 0, V);
            if (AFFINE) {
                /* sum_i (q_i s + b) x_i = s dot(q - H, x) + (b + H s) sum(x), H = 2^(b-1):
                 * centred codes, so that the two terms do not cancel (b is near -H s in
                 * quantized weights; with raw codes a one-row a8 case, lavapipe, had nmse
                 * 1.5e-9 against the 1e-9 tolerance, centred 7e-11). One weight read, 7 flops
                 * per 4 weights and row, against 8 for dequantizing first. */
                const float H = float(1u << (BITS - 1));
                float sx = (xv.x + xv.y) + (xv.z + xv.w);
                [[unroll]] for (uint r = 0; r < RPS; r++) {
                    uint w = cs[r][k / 4][k % 4];
                    float s = uintBitsToFloat(w << 16), b = uintBitsToFloat(w & 0xFFFF0000u);
                    acc[r] = fma(fma(H, s, b), sx, acc[r]);
                    acc[r] = fma(s, fma4(group_w(cq[r], k, H), xv, 0.0), acc[r]);
                }
            } else {
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    acc[r] = fma4(group_w(cq[r], k, 0.0), xv, acc[r]);
            }
        } else {
            vec4 w[RPS];
            [[unroll]] for (uint r = 0; r < RPS; r++) {
                w[r] = group_w(cq[r], k, 0.0);
                if (AFFINE) {
                    uint sw = cs[r][k / 4][k % 4];
                    w[r] = fma(w[r], vec4(uintBitsToFloat(sw << 16)),
                               vec4(uintBitsToFloat(sw & 0xFFFF0000u)));
                }
            }
            [[unroll]] for (uint t = 0; t < T; t++) {
                vec4 xv = xload(xbase, t, V);
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    acc[r * T + t] = fma4(w[r], xv, acc[r * T + t]);
            }
        }
    }
}

void store_rows(uint ybase, uint r0)
{
    [[unroll]] for (uint i = 0; i < RPS * T; i++) {
        float v = subgroupAdd(acc[i]);
        uint row = r0 + i / T;
        if (subgroupElect() && row < pc.rows)
            y[ybase + (i % T) * pc.ystride + pc.row0 + row] = v;
        acc[i] = 0.0;
    }
}

void main()
{
    const uint k = gl_WorkGroupID.y;
    const int m = idx[k];
    if (m < 0 || uint(m) >= pc.ne)
        return; /* uniform over the workgroup; the host checked idx, this is a guard */
    const uint slot = etab[m];
    if (slot == 0xFFFFFFFFu)
        return;
    const uint rbase = slot * pc.rows, xbase = k * pc.xk, ybase = k * T * pc.ystride;

    const uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    const uint nu = pc.nchunk * 32u, ipr = (nu + S - 1) / S; /* steps per row group */
    const uint ngroups = (pc.rows + RPS - 1) / RPS;
    const uint step = gl_NumSubgroups * gl_NumWorkGroups.x;
    uint rg = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID, it = 0;
    [[unroll]] for (uint i = 0; i < RPS * T; i++)
        acc[i] = 0.0;
    uvec4 nq[RPS], ns[RPS][NSB];
    if (rg < ngroups)
        load_unit(rbase, rg, min(lane, nu - 1), nq, ns);
    while (rg < ngroups) {
        uvec4 cq[RPS], cs[RPS][NSB];
        [[unroll]] for (uint i = 0; i < RPS; i++)
            cq[i] = nq[i];
        [[unroll]] for (uint i = 0; i < RPS; i++)
            [[unroll]] for (uint j = 0; j < NSB; j++)
                cs[i][j] = ns[i][j];
        const uint crg = rg, u = it * S + lane;
        if (++it == ipr) {
            it = 0;
            rg += step;
        }
        if (rg < ngroups)
            load_unit(rbase, rg, min(it * S + lane, nu - 1), nq, ns);
        if (u < nu)
            dot_unit(xbase, u, cq, cs);
        if (it == 0)
            store_rows(ybase, crg * RPS);
    }
}

/* Shared by matvec_q4_0.comp and matvec_q8_0.comp.
 *
 * Layout (repacked by the host, same bytes per weight as GGML): a row is cut into chunks of
 * 32 units of 16 bytes. Unit u = 32c + l of a row holds the codes of G groups of 4 weights:
 * group k covers x[4V .. 4V+3] with V = 32Gc + 32k + l. So 32 threads on consecutive units
 * read 512 contiguous bytes of codes and, for each k, 512 contiguous bytes of x (16-byte
 * loads, no shared memory). The scales of the blocks a unit touches (blocks V/8) are stored
 * next to each other per lane group l/8: one 16- or 8-byte load.
 *
 * Work split: a subgroup owns RPS rows at a time (its lanes stride over the units), so the
 * reduction is one subgroupAdd per row and token: no barriers, no shared memory, correct for
 * any subgroup size. A subgroup loops over row groups when the grid is capped (the device's
 * workgroup count limit), and loads its next units before computing the current ones. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint RPS = 4;       /* rows a subgroup works on at once */
layout(constant_id = 2) const uint T = 1;         /* tokens */
layout(constant_id = 3) const bool PARTIAL = true; /* cols leaves a partial last chunk */

layout(std430, binding = 0) readonly buffer Qb { uvec4 q[]; };   /* [row][unit] */
layout(std430, binding = 2) readonly buffer Xb { vec4 x[]; };    /* [T][nv] */
layout(std430, binding = 3) writeonly buffer Yb { float y[]; };  /* [T][ystride] */

layout(push_constant) uniform PC {
    uint rows;    /* rows in this chunk of the matrix */
    uint nv;      /* vec4s in a row of x: cols / 4 */
    uint nchunk;  /* chunks per row */
    uint row0;    /* first row of this chunk in y */
    uint ystride; /* all rows */
} pc;

float acc[RPS * T]; /* [row][token] */

/* Four bytes (each < 256) of m to floats, minus an offset, without the int->float conversion
 * unit: the byte becomes the low mantissa bits of 2^23 (exact), the subtraction of bias =
 * 2^23 + offset leaves byte - offset. Q4_0 uses this: 5-15% faster than bytes4_cvt there on
 * an H200, while Q8_0 was 0-4% faster with bytes4_cvt. */
vec4 bytes4_magic(uint m, float bias)
{
    return uintBitsToFloat(uvec4(bitfieldInsert(0x4B000000u, m, 0, 8),
                                 bitfieldInsert(0x4B000000u, m >> 8, 0, 8),
                                 bitfieldInsert(0x4B000000u, m >> 16, 0, 8),
                                 (m >> 24) | 0x4B000000u)) - bias;
}

vec4 bytes4_cvt(uint m, float offset)
{
    return vec4(uvec4(m & 0xFFu, (m >> 8) & 0xFFu, (m >> 16) & 0xFFu, m >> 24)) - offset;
}

/* acc + dot(a, b) as a chain of fused multiply-adds */
float fma4(vec4 a, vec4 b, float s)
{
    return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, s))));
}

/* x vec4 V of token t; zero past the end of the row (partial last chunk). */
vec4 xload(uint t, uint V)
{
    if (!PARTIAL)
        return x[t * pc.nv + V];
    vec4 v = x[t * pc.nv + min(V, pc.nv - 1)];
    return V < pc.nv ? v : vec4(0.0);
}

void store_rows(uint rbase)
{
    [[unroll]] for (uint i = 0; i < RPS * T; i++) {
        float v = subgroupAdd(acc[i]);
        uint row = rbase + i / T;
        if (subgroupElect() && row < pc.rows)
            y[(i % T) * pc.ystride + pc.row0 + row] = v;
        acc[i] = 0.0;
    }
}

/* The loop every format shares: walks (row group, unit) pairs of this subgroup, loading the
 * next pair before computing the current one. load_unit and dot_unit come from the format. */
#define MATVEC_MAIN(CODE_T, SCALE_T)                                                          \
    void main()                                                                               \
    {                                                                                         \
        const uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;                       \
        const uint nu = pc.nchunk * 32u, ipr = (nu + S - 1) / S; /* steps per row group */    \
        const uint ngroups = (pc.rows + RPS - 1) / RPS;                                       \
        const uint step = gl_NumSubgroups * gl_NumWorkGroups.x;                               \
        uint rg = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID, it = 0;                 \
        [[unroll]] for (uint i = 0; i < RPS * T; i++)                                         \
            acc[i] = 0.0;                                                                     \
        CODE_T nq[RPS];                                                                       \
        SCALE_T nd[RPS];                                                                      \
        if (rg < ngroups)                                                                     \
            load_unit(rg, min(lane, nu - 1), nq, nd);                                         \
        while (rg < ngroups) {                                                                \
            CODE_T cq[RPS];                                                                   \
            SCALE_T cd[RPS];                                                                  \
            [[unroll]] for (uint r = 0; r < RPS; r++) {                                       \
                cq[r] = nq[r];                                                                \
                cd[r] = nd[r];                                                                \
            }                                                                                 \
            const uint crg = rg, u = it * S + lane;                                           \
            if (++it == ipr) {                                                                \
                it = 0;                                                                       \
                rg += step;                                                                   \
            }                                                                                 \
            if (rg < ngroups)                                                                 \
                load_unit(rg, min(it * S + lane, nu - 1), nq, nd);                            \
            if (u < nu)                                                                       \
                dot_unit(u, cq, cd);                                                          \
            if (it == 0)                                                                      \
                store_rows(crg * RPS);                                                        \
        }                                                                                     \
    }

#version 450
/* MLA decode, pass 0 of the Vulkan implementations (mla_vk.c): the absorption of W_UK into the
 * queries. For row m = i * H + h (query i, head h) and latent element r:
 *   qa[m][r]     = scale * sum_d W_UK[h][d][r] q_nope[m][d]   (r < R)
 *   qa[m][R + j] = scale * q_pe[m][j]                         (j < ROPE)
 * with scale = s * log2(e): the split pass's scores come out in log2 units. Workgroup
 * (x, h): 64 consecutive elements of [q' ; q_pe] for every query of head h (one W_UK read per
 * head, coalesced along r); q_nope of the head in shared memory. W_UK in f32 or bf16 (pairs of
 * elements in a 32-bit word, the low half first). */
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint R = 512;
layout(constant_id = 1) const uint ROPE = 64;
layout(constant_id = 2) const uint NQ = 1;
layout(constant_id = 3) const bool W_BF16 = true;
const uint NOPE = 128;
const uint K = R + ROPE;

layout(std430, binding = 0) readonly buffer QNb { float qn[]; };   /* [NQ][H][NOPE] */
layout(std430, binding = 1) readonly buffer QPb { float qpe[]; };  /* [NQ][H][ROPE] */
layout(std430, binding = 2) readonly buffer WKb { uint wk[]; };    /* [H][NOPE][R] */
layout(std430, binding = 3) writeonly buffer QAb { float qa[]; };  /* [NQ * H][K] */

layout(push_constant) uniform PC {
    uint H;
    float scale;
} pc;

shared float sq[NQ * NOPE];

float w_at(uint e)
{
    if (W_BF16) {
        const uint w = wk[e / 2u];
        return uintBitsToFloat((e % 2u) == 0u ? w << 16 : w & 0xFFFF0000u);
    }
    return uintBitsToFloat(wk[e]);
}

void main()
{
    const uint t = gl_LocalInvocationID.x, h = gl_WorkGroupID.y;
    const uint r = gl_WorkGroupID.x * 64u + t;
    for (uint e = t; e < NQ * NOPE; e += 64u)
        sq[e] = qn[((e / NOPE) * pc.H + h) * NOPE + e % NOPE];
    barrier();
    if (r < R) {
        float acc[NQ];
        for (uint i = 0u; i < NQ; i++)
            acc[i] = 0.0;
        const uint w0 = h * NOPE * R + r;
        for (uint d = 0u; d < NOPE; d++) {
            const float w = w_at(w0 + d * R);
            for (uint i = 0u; i < NQ; i++)
                acc[i] = fma(w, sq[i * NOPE + d], acc[i]);
        }
        for (uint i = 0u; i < NQ; i++)
            qa[(i * pc.H + h) * K + r] = acc[i] * pc.scale;
    } else if (r < K) {
        for (uint i = 0u; i < NQ; i++)
            qa[(i * pc.H + h) * K + r] = qpe[(i * pc.H + h) * ROPE + r - R] * pc.scale;
    }
}

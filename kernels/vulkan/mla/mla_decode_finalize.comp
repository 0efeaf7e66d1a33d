#version 450
/* MLA decode, the last pass of both Vulkan implementations (mla_decode.comp and
 * mla_cm.coopmat.comp leave the split records): per row m = i * H + h,
 *   M = max_s m_s, w_s = 2^(m_s - M) (0 for a split whose m_s is -inf),
 *   ov = sum_s w_s o_s / sum_s w_s l_s (0 when that sum is 0),   in shared memory,
 *   out[m][v] = W_UV[h][v] . ov, thread v (and v + 128): the W_UV row read along r.
 * W_UV in f32 or bf16 (pairs in 32-bit words). */
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint R = 512;
layout(constant_id = 1) const uint VD = 128;
layout(constant_id = 2) const bool W_BF16 = true;
#define NEG_INF uintBitsToFloat(0xFF800000u)

layout(std430, binding = 0) readonly buffer Ob { float part_o[]; };  /* [nsplit][rows][R] */
layout(std430, binding = 1) readonly buffer Mb { vec2 part_ml[]; };  /* [nsplit][rows] */
layout(std430, binding = 2) readonly buffer Wb { uint wv[]; };       /* [H][VD][R] */
layout(std430, binding = 3) writeonly buffer Yb { float o[]; };      /* [M][VD] */

layout(push_constant) uniform PC {
    uint H;
    uint M;
    uint rows; /* rows per split in the records: M, or M padded (vk_cm) */
    uint nsplit;
} pc;

shared float sm[128];
shared float sov[R];

void main()
{
    const uint t = gl_LocalInvocationID.x, row = gl_WorkGroupID.x, h = row % pc.H;
    float mx = NEG_INF;
    for (uint s = t; s < pc.nsplit; s += 128u)
        mx = max(mx, part_ml[s * pc.rows + row].x);
    sm[t] = mx;
    barrier();
    for (uint w = 64u; w > 0u; w >>= 1) {
        if (t < w)
            sm[t] = max(sm[t], sm[t + w]);
        barrier();
    }
    mx = sm[0];
    barrier(); /* sm is reused for the sum */
    float L = 0.0;
    for (uint s = t; s < pc.nsplit; s += 128u) {
        const vec2 ml = part_ml[s * pc.rows + row];
        L += ml.x == NEG_INF ? 0.0 : exp2(ml.x - mx) * ml.y;
    }
    sm[t] = L;
    barrier();
    for (uint w = 64u; w > 0u; w >>= 1) {
        if (t < w)
            sm[t] += sm[t + w];
        barrier();
    }
    const float inv = sm[0] > 0.0 ? 1.0 / sm[0] : 0.0;
    for (uint r = t; r < R; r += 128u) {
        float a = 0.0;
        for (uint s = 0u; s < pc.nsplit; s++) {
            const float ms = part_ml[s * pc.rows + row].x;
            if (ms != NEG_INF)
                a = fma(exp2(ms - mx), part_o[(s * pc.rows + row) * R + r], a);
        }
        sov[r] = a * inv;
    }
    barrier();
    for (uint v = t; v < VD; v += 128u) {
        float a = 0.0;
        const uint e0 = (h * VD + v) * R;
        if (W_BF16) {
            for (uint r = 0u; r < R; r += 2u) {
                const uint w = wv[(e0 + r) / 2u];
                a = fma(uintBitsToFloat(w << 16), sov[r], a);
                a = fma(uintBitsToFloat(w & 0xFFFF0000u), sov[r + 1u], a);
            }
        } else {
            for (uint r = 0u; r < R; r++)
                a = fma(uintBitsToFloat(wv[e0 + r]), sov[r], a);
        }
        o[row * VD + v] = a;
    }
}

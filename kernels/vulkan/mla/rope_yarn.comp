#version 450
/* rope_yarn (rope_yarn.h): workgroup (token t, block of HB heads). Threads i < half first make
 * the token's cos and sin of theta_i = fl32(pos * inv_freq[i]) into shared memory, then every
 * thread rotates pairs (head, i) of the block.
 * The GPU's sin and cos are accurate only near 0 (Vulkan: 2^-11 absolute in [-pi, pi]), and
 * theta reaches 2^20: theta is reduced exactly instead. theta = m 2^e (m a 24-bit integer) times
 * 2/pi as a 64-bit binary fraction C (0xA2F9836E4E441529, its truncation error below 2^-46
 * quarter turns here) is an integer product of up to 88 bits (umulExtended); its bits around
 * the binary point give the quarter-turn count n (rounded to nearest) and 32 bits of the rest
 * f in [-1/2, 1/2), so r = f pi/2 in [-pi/4, pi/4] to ~2^-25 rad; sin and cos of r by
 * polynomials (Cephes sinf/cosf, ~1 ulp there), and the quadrant n mod 4 picks and signs them.
 * Angles below 1/2 need no reduction (r = theta). */
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint ROT = 64;
layout(constant_id = 1) const uint HB = 8; /* heads per workgroup */
const uint HALF = ROT / 2u;

layout(std430, binding = 0) readonly buffer Xb { float x[]; };      /* [tokens][H][ROT] */
layout(std430, binding = 1) readonly buffer Fb { float f[]; };      /* [HALF] */
layout(std430, binding = 2) readonly buffer Sb { float mscale; };
layout(std430, binding = 3) writeonly buffer Yb { float y[]; };     /* [tokens][H][ROT] */

layout(push_constant) uniform PC {
    uint H;
    uint pos; /* position of token 0 */
} pc;

shared float sc[HALF], ss[HALF];

/* sin and cos of theta >= 0, theta < 2^20 */
vec2 sincos_exact(float theta)
{
    float r = theta;
    uint n = 0u;
    if (theta >= 0.5) {
        const uint bits = floatBitsToUint(theta);
        const uint m = (bits & 0x7FFFFFu) | 0x800000u;
        const int e = int(bits >> 23) - 150; /* theta = m 2^e, e in [-24, -4] */
        uint a1, a0, b1, b0;
        umulExtended(m, 0x4E441529u, a1, a0); /* m C_lo */
        umulExtended(m, 0xA2F9836Eu, b1, b0); /* m C_hi */
        uint c;
        const uint w1 = uaddCarry(b0, a1, c); /* bits 32..63 of P = m C */
        const uint w2 = b1 + c;               /* bits 64..87 */
        /* theta 2/pi = P 2^(e - 64): the binary point sits at bit 64 - e = s + 32 */
        const uint sh = uint(-e); /* s - 32, in [4, 24] */
        const uint frac = (w1 >> sh) | (w2 << (32u - sh));
        n = w2 >> sh;
        const int fi = int(frac); /* a fraction >= 1/2 rounds up: f - 1 */
        if (fi < 0)
            n += 1u;
        r = float(fi) * 3.6572952e-10; /* pi/2 2^-32 */
    }
    const float z = r * r;
    const float sr = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
    const float cr = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 +
                                                                         z * 2.443315711809948e-5));
    const uint q = n & 3u;
    const float s = q == 0u ? sr : q == 1u ? cr : q == 2u ? -sr : -cr;
    const float co = q == 0u ? cr : q == 1u ? -sr : q == 2u ? -cr : sr;
    return vec2(s, co);
}

void main()
{
    const uint tid = gl_LocalInvocationID.x, t = gl_WorkGroupID.x, h0 = gl_WorkGroupID.y * HB;
    for (uint i = tid; i < HALF; i += 64u) {
        precise const float theta = float(pc.pos + t) * f[i]; /* one rounding, as defined */
        const vec2 s = sincos_exact(theta);
        sc[i] = mscale * s.y;
        ss[i] = mscale * s.x;
    }
    barrier();
    const uint nh = min(HB, pc.H - h0);
    for (uint e = tid; e < nh * HALF; e += 64u) {
        const uint i = e % HALF, base = ((t * pc.H) + h0 + e / HALF) * ROT;
        const float x0 = x[base + i], x1 = x[base + i + HALF];
        y[base + i] = x0 * sc[i] - x1 * ss[i];
        y[base + i + HALF] = x0 * ss[i] + x1 * sc[i];
    }
}

/* What every mma shader shares: bindings, push constants, and the staging of weights: eight
 * weights of a row's 32-block, dequantized from the format as stored (no repacking on the host).
 *
 * Spec constants the including shader declares first: FMT (0 q8_0, 1 q4_0, 2 a4, 3 f16,
 * 4 bf16) and GROUP (a4's group: 32, 64, 128).
 * A dispatch covers rows [m0, m0 + M) of A and C and weight rows [n0, n0 + N) (the host cuts
 * larger matrices so that every binding fits the device's storage range); the push constants
 * give each binding's start of that range:
 *   W (uint[]): row n's bytes from w_off + n * row_bytes (a byte offset: GGML blocks are 18 or
 *     34 bytes, 2-byte aligned, read as 16-bit halves of words);
 *   scales, biases (a4, uint[] of bf16 pairs): row n's from element g_off + n * K / GROUP;
 *   A (vec4[]): row m from a_off + m * K / 4;  C (float[]): C[m][n] at c_off + m * ldc + n. */
#extension GL_EXT_control_flow_attributes : require

layout(std430, binding = 0) readonly buffer Wb { uint wq[]; };
layout(std430, binding = 1) readonly buffer Sb { uint wsc[]; };
layout(std430, binding = 2) readonly buffer Bb { uint wbi[]; };
layout(std430, binding = 3) readonly buffer Ab { vec4 av[]; };
layout(std430, binding = 4) writeonly buffer Cb { float cv[]; };

layout(push_constant) uniform PC {
    uint M;     /* rows of A and C in this dispatch */
    uint N;     /* weight rows (columns of C) in this dispatch */
    uint K;
    uint ldc;   /* row stride of C */
    uint c_off; /* element of C[m0][n0] */
    uint a_off; /* vec4 of A[m0][0] */
    uint w_off; /* byte of W row n0 */
    uint g_off; /* element of row n0's scales and biases (a4) */
} pc;

uint row_bytes()
{
    return FMT == 0u ? pc.K / 32u * 34u : FMT == 1u ? pc.K / 32u * 18u : FMT == 2u ? pc.K / 2u
                                                                                   : pc.K * 2u;
}

/* 16 bits at an even byte offset of W */
uint w_u16(uint byte)
{
    const uint w = wq[byte >> 2];
    return (byte & 2u) != 0u ? w >> 16 : w & 0xFFFFu;
}

/* 32 bits at an even byte offset of W */
uint w_u32(uint byte)
{
    const uint i = byte >> 2;
    return (byte & 2u) == 0u ? wq[i] : (wq[i] >> 16) | (wq[i + 1u] << 16);
}

uint bf16_at(uint e, bool bias)
{
    const uint w = bias ? wbi[e >> 1] : wsc[e >> 1];
    return (e & 1u) != 0u ? w >> 16 : w & 0xFFFFu;
}

/* k within the block of weight i (0..7) of part p (0..3): Q4_0 part p holds bytes 4p..4p+3,
 * low nibbles k = 4p + i, high nibbles k = 16 + 4p + i - 4; the others 8 consecutive k. Every
 * format keeps the pairs (2i, 2i + 1) at consecutive k (2i even). */
uint wk(uint p, uint i)
{
    return FMT == 1u ? (i < 4u ? 4u * p + i : 12u + 4u * p + i) : 8u * p + i;
}

/* A part's raw bits, loaded apart from their decoding so that a shader can issue the loads of
 * the next block before it computes on this one (mma_cm: PREFETCH). q: the codes (q8_0: 2
 * words, q4_0: 1, a4: 1, f16/bf16: 4); s: the f16 scale (q8_0, q4_0) or a4's bf16 scale; b: a4's
 * bf16 bias. */
struct WRaw {
    uvec4 q;
    uint s;
    uint b;
};

WRaw w_load(uint n, uint kb, uint p)
{
    WRaw r;
    r.q = uvec4(0u);
    r.s = 0u;
    r.b = 0u;
    const uint base = pc.w_off + n * row_bytes();
    if (FMT == 0u) {
        const uint blk = base + kb * 34u;
        r.s = w_u16(blk);
        r.q.x = w_u32(blk + 2u + 8u * p);
        r.q.y = w_u32(blk + 6u + 8u * p);
    } else if (FMT == 1u) {
        const uint blk = base + kb * 18u;
        r.s = w_u16(blk);
        r.q.x = w_u32(blk + 2u + 4u * p);
    } else if (FMT == 2u) {
        r.q.x = wq[(base >> 2) + kb * 4u + p]; /* rows are whole words */
        const uint e = pc.g_off + n * (pc.K / GROUP) + kb * 32u / GROUP;
        r.s = bf16_at(e, false);
        r.b = bf16_at(e, true);
    } else {
        const uint w0 = (base >> 2) + kb * 16u + 4u * p; /* 16 words a block, 4 a part */
        r.q = uvec4(wq[w0], wq[w0 + 1u], wq[w0 + 2u], wq[w0 + 3u]);
    }
    return r;
}

/* The 8 weights of a part (f32: exact for q8_0, q4_0, f16, bf16; a4: code * scale + bias
 * rounded once); v[i] is at k = wk(p, i) of the block. */
void w_dequant(WRaw r, out float v[8])
{
    if (FMT == 0u) {
        const float d = unpackHalf2x16(r.s).x;
        [[unroll]] for (uint i = 0; i < 4u; i++) {
            v[i] = d * float(bitfieldExtract(int(r.q.x), int(8u * i), 8));
            v[i + 4u] = d * float(bitfieldExtract(int(r.q.y), int(8u * i), 8));
        }
    } else if (FMT == 1u) {
        const float d = unpackHalf2x16(r.s).x;
        [[unroll]] for (uint i = 0; i < 4u; i++) {
            v[i] = d * (float((r.q.x >> (8u * i)) & 15u) - 8.0);
            v[i + 4u] = d * (float((r.q.x >> (8u * i + 4u)) & 15u) - 8.0);
        }
    } else if (FMT == 2u) {
        const float s = uintBitsToFloat(r.s << 16), b = uintBitsToFloat(r.b << 16);
        [[unroll]] for (uint i = 0; i < 8u; i++)
            v[i] = float((r.q.x >> (4u * i)) & 15u) * s + b;
    } else {
        [[unroll]] for (uint i = 0; i < 4u; i++) {
            if (FMT == 3u) {
                const vec2 h = unpackHalf2x16(r.q[i]);
                v[2u * i] = h.x;
                v[2u * i + 1u] = h.y;
            } else {
                v[2u * i] = uintBitsToFloat(r.q[i] << 16);
                v[2u * i + 1u] = uintBitsToFloat(r.q[i] & 0xFFFF0000u);
            }
        }
    }
}

/* Part p of weight row n's 32-block kb, dequantized. */
void w_part(uint n, uint kb, uint p, out float v[8])
{
    w_dequant(w_load(n, kb, p), v);
}

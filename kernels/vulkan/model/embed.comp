#version 450
/* embed_<fmt>: y[t][c] = table[clamp(ids[t])][c] dequantized (FMT: 0 f32, 1 f16, 2 bf16,
 * 3 q8_0, 4 q4_0). The table is read as 16-bit words (every format is 2-byte aligned: q4_0
 * blocks are 18 bytes, q8_0 34) from up to 6 bindings of RPC rows each, so a table larger than
 * one binding may hold (lavapipe: 128 MiB) is read in place. One invocation per element. */
#extension GL_EXT_shader_16bit_storage : require

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint FMT = 0;

layout(std430, binding = 0) readonly buffer Ids { int ids[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer T0 { uint16_t t0[]; };
layout(std430, binding = 3) readonly buffer T1 { uint16_t t1[]; };
layout(std430, binding = 4) readonly buffer T2 { uint16_t t2[]; };
layout(std430, binding = 5) readonly buffer T3 { uint16_t t3[]; };
layout(std430, binding = 6) readonly buffer T4 { uint16_t t4[]; };
layout(std430, binding = 7) readonly buffer T5 { uint16_t t5[]; };

layout(push_constant) uniform PC {
    uint rows;   /* table rows */
    uint cols;   /* values per row */
    uint tokens;
    uint rpc;    /* rows per binding */
    uint rowh;   /* 16-bit words per row */
} pc;

/* 16-bit word i of binding c */
uint th(uint c, uint i)
{
    if (c == 0u) return uint(t0[i]);
    if (c == 1u) return uint(t1[i]);
    if (c == 2u) return uint(t2[i]);
    if (c == 3u) return uint(t3[i]);
    if (c == 4u) return uint(t4[i]);
    return uint(t5[i]);
}

/* byte k of a block whose codes start at word w */
uint code_byte(uint c, uint w, uint k)
{
    uint h = th(c, w + (k >> 1));
    return (k & 1u) != 0u ? h >> 8 : h & 0xFFu;
}

void main()
{
    const uint col = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (col >= pc.cols || t >= pc.tokens)
        return;
    const uint id = uint(clamp(ids[t], 0, int(pc.rows) - 1));
    const uint c = id / pc.rpc, base = (id % pc.rpc) * pc.rowh;
    float v;
    if (FMT == 0u) {
        v = uintBitsToFloat(th(c, base + 2u * col) | (th(c, base + 2u * col + 1u) << 16));
    } else if (FMT == 1u) {
        v = unpackHalf2x16(th(c, base + col)).x;
    } else if (FMT == 2u) {
        v = uintBitsToFloat(th(c, base + col) << 16);
    } else if (FMT == 3u) {
        const uint blk = base + (col >> 5) * 17u, j = col & 31u; /* 34-byte blocks */
        const float d = unpackHalf2x16(th(c, blk)).x;
        v = d * float(int(code_byte(c, blk + 1u, j) << 24) >> 24);
    } else {
        const uint blk = base + (col >> 5) * 9u, j = col & 31u; /* 18-byte blocks */
        const float d = unpackHalf2x16(th(c, blk)).x;
        const uint b = code_byte(c, blk + 1u, j & 15u);
        v = d * (float(j < 16u ? b & 15u : b >> 4) - 8.0);
    }
    y[t * pc.cols + col] = v;
}

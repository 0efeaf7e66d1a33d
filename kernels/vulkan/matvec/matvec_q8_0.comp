#version 450
/* y[t][r] = sum_c W[r,c] x[t][c], W in Q8_0 repacked (matvec_common.glsl): a unit holds 4
 * groups, word k = group k, byte i = weight 4V+i (int8). Scales: 4 f16 per lane group. */
#extension GL_GOOGLE_include_directive : require
#include "matvec_common.glsl"

layout(std430, binding = 1) readonly buffer Db { uvec2 dsc[]; }; /* [row][chunk][lane/8] */

void load_unit(uint rg, uint u, out uvec4 cq[RPS], out uvec2 cd[RPS])
{
    [[unroll]] for (uint r = 0; r < RPS; r++) {
        uint row = min(rg * RPS + r, pc.rows - 1); /* rows past the end: not stored */
        cq[r] = q[row * pc.nchunk * 32u + u];
        cd[r] = dsc[(row * pc.nchunk + (u >> 5)) * 4u + ((u & 31u) >> 3)];
    }
}

void dot_unit(uint u, uvec4 cq[RPS], uvec2 cd[RPS])
{
    const uint c = u >> 5, l = u & 31u;
    [[unroll]] for (uint j = 0; j < 2; j++) {
        vec2 d[RPS];
        [[unroll]] for (uint r = 0; r < RPS; r++)
            d[r] = unpackHalf2x16(cd[r][j]);
        [[unroll]] for (uint h = 0; h < 2; h++) {
            const uint k = 2u * j + h, V = c * 128u + 32u * k + l;
            vec4 w[RPS];
            [[unroll]] for (uint r = 0; r < RPS; r++)
                w[r] = bytes4_cvt(cq[r][k] ^ 0x80808080u, 128.0); /* int8 = byte^0x80 - 128 */
            if (T == 1) {
                vec4 xv = xload(0, V);
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    acc[r] = fma(fma4(w[r], xv, 0.0), d[r][h], acc[r]);
            } else {
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    w[r] *= d[r][h];
                [[unroll]] for (uint t = 0; t < T; t++) {
                    vec4 xv = xload(t, V);
                    [[unroll]] for (uint r = 0; r < RPS; r++)
                        acc[r * T + t] = fma4(w[r], xv, acc[r * T + t]);
                }
            }
        }
    }
}

MATVEC_MAIN(uvec4, uvec2)

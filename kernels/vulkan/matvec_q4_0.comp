#version 450
/* y[t][r] = sum_c W[r,c] x[t][c], W in Q4_0: 16 bytes of quants per block are one unit;
 * quant byte j holds weight j (low nibble) and weight j + 16 (high nibble). */
#extension GL_GOOGLE_include_directive : require
#include "matvec_common.glsl"

const float BIAS = 8388616.0; /* 2^23 + 8: q - 8 */

void main()
{
    const uint rbase = gl_WorkGroupID.x * RPW, nb = pc.nb;
    [[unroll]] for (uint i = 0; i < RPW * T; i++)
        acc[i] = 0.0;
    for (uint b = gl_LocalInvocationID.x; b < nb; b += WG) {
        uvec4 qv[RPW];
        float dv[RPW];
        [[unroll]] for (uint r = 0; r < RPW; r++) {
            uint i = min(rbase + r, pc.rows - 1) * nb + b; /* rows past the end: discarded */
            qv[r] = q[i];
            dv[r] = scale(i);
        }
        if (T == 1) {
            /* one scale multiply per block */
            float s[RPW];
            [[unroll]] for (uint r = 0; r < RPW; r++)
                s[r] = 0.0;
            [[unroll]] for (uint p = 0; p < 4; p++) {
                vec4 xl = x[b * 8 + p], xh = x[b * 8 + 4 + p];
                [[unroll]] for (uint r = 0; r < RPW; r++) {
                    uint w = qv[r][p];
                    s[r] += dot(bytes4(w & 0x0F0F0F0Fu, BIAS), xl) +
                            dot(bytes4((w >> 4) & 0x0F0F0F0Fu, BIAS), xh);
                }
            }
            [[unroll]] for (uint r = 0; r < RPW; r++)
                acc[r] += dv[r] * s[r];
        } else {
            /* scaled weights, reused by every token */
            [[unroll]] for (uint p = 0; p < 4; p++) {
                vec4 wl[RPW], wh[RPW];
                [[unroll]] for (uint r = 0; r < RPW; r++) {
                    uint w = qv[r][p];
                    wl[r] = bytes4(w & 0x0F0F0F0Fu, BIAS) * dv[r];
                    wh[r] = bytes4((w >> 4) & 0x0F0F0F0Fu, BIAS) * dv[r];
                }
                [[unroll]] for (uint t = 0; t < T; t++) {
                    vec4 xl = x[(t * nb + b) * 8 + p], xh = x[(t * nb + b) * 8 + 4 + p];
                    [[unroll]] for (uint r = 0; r < RPW; r++)
                        acc[r * T + t] += dot(wl[r], xl) + dot(wh[r], xh);
                }
            }
        }
    }
    reduce_store(rbase);
}

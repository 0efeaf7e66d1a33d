#version 450
/* y[t][r] = sum_c W[r,c] x[t][c], W in Q8_0: a unit is half a block (16 int8 quants); the
 * two halves of a block share its scale. */
#extension GL_GOOGLE_include_directive : require
#include "matvec_common.glsl"

const float BIAS = 8388736.0; /* 2^23 + 128: bytes are biased by XOR 0x80 */

void main()
{
    const uint rbase = gl_WorkGroupID.x * RPW, nb = pc.nb, nu = 2 * nb;
    [[unroll]] for (uint i = 0; i < RPW * T; i++)
        acc[i] = 0.0;
    for (uint u = gl_LocalInvocationID.x; u < nu; u += WG) {
        uvec4 qv[RPW];
        float dv[RPW];
        [[unroll]] for (uint r = 0; r < RPW; r++) {
            uint row = min(rbase + r, pc.rows - 1); /* rows past the end: discarded */
            qv[r] = q[row * nu + u] ^ uvec4(0x80808080u);
            dv[r] = scale(row * nb + (u >> 1));
        }
        if (T == 1) {
            float s[RPW];
            [[unroll]] for (uint r = 0; r < RPW; r++)
                s[r] = 0.0;
            [[unroll]] for (uint p = 0; p < 4; p++) {
                vec4 xv = x[u * 4 + p];
                [[unroll]] for (uint r = 0; r < RPW; r++)
                    s[r] += dot(bytes4(qv[r][p], BIAS), xv);
            }
            [[unroll]] for (uint r = 0; r < RPW; r++)
                acc[r] += dv[r] * s[r];
        } else {
            [[unroll]] for (uint p = 0; p < 4; p++) {
                vec4 wv[RPW];
                [[unroll]] for (uint r = 0; r < RPW; r++)
                    wv[r] = bytes4(qv[r][p], BIAS) * dv[r];
                [[unroll]] for (uint t = 0; t < T; t++) {
                    vec4 xv = x[t * nb * 8 + u * 4 + p];
                    [[unroll]] for (uint r = 0; r < RPW; r++)
                        acc[r * T + t] += dot(wv[r], xv);
                }
            }
        }
    }
    reduce_store(rbase);
}

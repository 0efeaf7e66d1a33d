/* The scalar shared-memory GEMM of mma_f32.comp, mma_h.comp and mma_hh.comp (PREC 0, 1, 2).
 *
 * A workgroup of 256 threads (16 x 16) computes a BM x BN tile of C (BM = BN = 16 TM): thread
 * (tx, ty) owns rows ty + 16 i and columns tx + 16 j (i, j < TM), so that threads next to each
 * other read neighbouring shared words. Per 32-block of K, the workgroup stages A (BM tokens x
 * 32, coalesced vec4 loads) and W (BN rows x 32: four threads per row's block, each dequantizing
 * eight weights as w_part does) into shared memory, k-major, zeros past M and N; then every
 * thread accumulates its TM x TM outputs over the block.
 *   PREC 0 (vk_f32): f32 in shared memory, f32 FMAs;
 *   PREC 1 (vk_h):   A and W rounded to f16 in shared memory (pairs of k in a word, with
 *                    packHalf2x16), products and sums in f32;
 *   PREC 2 (vk_hh):  the same f16 operands and f16 products and sums (float16_t FMAs; needs
 *                    shaderFloat16): the seed's all-half tile. */
layout(local_size_x = 256) in;

const uint BM = 16u * TM; /* = BN */
const uint BK = 32u;

#if PREC == 0
shared float sA[BK * BM];
shared float sW[BK * BM];
#else
shared uint sA[BK / 2u * BM]; /* f16 pairs (k, k + 1) */
shared uint sW[BK / 2u * BM];
#endif

void main()
{
    const uint t = gl_LocalInvocationID.x, tx = t % 16u, ty = t / 16u;
    const uint n0 = gl_WorkGroupID.x * BM, m0 = gl_WorkGroupID.y * BM;
#if PREC == 2
    float16_t acc[TM][TM];
#else
    float acc[TM][TM];
#endif
    [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < TM; j++)
            acc[i][j] = ACC_T(0.0);

    for (uint kb = 0; kb < pc.K / 32u; kb++) {
        /* A: BM rows x 8 vec4 */
        for (uint u = t; u < BM * 8u; u += 256u) {
            const uint r = u / 8u, c4 = u % 8u, m = m0 + r;
            const vec4 a = m < pc.M ? av[pc.a_off + m * (pc.K / 4u) + kb * 8u + c4] : vec4(0.0);
#if PREC == 0
            [[unroll]] for (uint q = 0; q < 4u; q++)
                sA[(4u * c4 + q) * BM + r] = a[q];
#else
            sA[(2u * c4) * BM + r] = packHalf2x16(a.xy);
            sA[(2u * c4 + 1u) * BM + r] = packHalf2x16(a.zw);
#endif
        }
        /* W: BN rows x 4 parts of 8 */
        for (uint u = t; u < BM * 4u; u += 256u) {
            const uint r = u / 4u, p = u % 4u, n = n0 + r;
            float v[8];
            if (n < pc.N) {
                w_part(n, kb, p, v);
            } else {
                [[unroll]] for (uint i = 0; i < 8u; i++)
                    v[i] = 0.0;
            }
#if PREC == 0
            [[unroll]] for (uint i = 0; i < 8u; i++)
                sW[wk(p, i) * BM + r] = v[i];
#else
            [[unroll]] for (uint i = 0; i < 8u; i += 2u)
                sW[(wk(p, i) / 2u) * BM + r] = packHalf2x16(vec2(v[i], v[i + 1u]));
#endif
        }
        barrier();
#if PREC == 0
        [[unroll]] for (uint k = 0; k < BK; k++) {
            float a[TM], w[TM];
            [[unroll]] for (uint i = 0; i < TM; i++) {
                a[i] = sA[k * BM + ty + 16u * i];
                w[i] = sW[k * BM + tx + 16u * i];
            }
            [[unroll]] for (uint i = 0; i < TM; i++)
                [[unroll]] for (uint j = 0; j < TM; j++)
                    acc[i][j] = fma(a[i], w[j], acc[i][j]);
        }
#else
        [[unroll]] for (uint kp = 0; kp < BK / 2u; kp++) {
            HVEC2 a[TM], w[TM];
            [[unroll]] for (uint i = 0; i < TM; i++) {
                a[i] = UNPACK2(sA[kp * BM + ty + 16u * i]);
                w[i] = UNPACK2(sW[kp * BM + tx + 16u * i]);
            }
            [[unroll]] for (uint i = 0; i < TM; i++)
                [[unroll]] for (uint j = 0; j < TM; j++)
                    acc[i][j] = fma(a[i].y, w[j].y, fma(a[i].x, w[j].x, acc[i][j]));
        }
#endif
        barrier();
    }
    [[unroll]] for (uint i = 0; i < TM; i++) {
        const uint m = m0 + ty + 16u * i;
        [[unroll]] for (uint j = 0; j < TM; j++) {
            const uint n = n0 + tx + 16u * j;
            if (m < pc.M && n < pc.N)
                cv[pc.c_off + m * pc.ldc + n] = float(acc[i][j]);
        }
    }
}

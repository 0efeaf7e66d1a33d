#version 450
/* mma GEMM, scalar shared-memory tiles: f16 operands, f32 products and sums (vk_h). See mma_tile.glsl. */
layout(constant_id = 0) const uint FMT = 0;   /* 0 q8_0, 1 q4_0, 2 a4, 3 f16, 4 bf16 */
layout(constant_id = 1) const uint GROUP = 64; /* a4 */
layout(constant_id = 2) const uint TM = 4;     /* outputs per thread: TM x TM */
#extension GL_GOOGLE_include_directive : require
#define PREC 1
#define ACC_T float
#define HVEC2 vec2
#define UNPACK2 unpackHalf2x16
#include "mma_stage.glsl"
#include "mma_tile.glsl"

#version 450
/* matvec_a2: MLX affine 2-bit weights; the kernel is matvec_affine.glsl. */
#extension GL_GOOGLE_include_directive : require
#define BITS 2
#include "matvec_affine.glsl"

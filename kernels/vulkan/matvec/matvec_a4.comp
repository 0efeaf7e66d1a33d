#version 450
/* matvec_a4: MLX affine 4-bit weights; the kernel is matvec_affine.glsl. */
#extension GL_GOOGLE_include_directive : require
#define BITS 4
#include "matvec_affine.glsl"

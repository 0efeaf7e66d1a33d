#version 450
/* matvec_a8: MLX affine 8-bit weights; the kernel is matvec_affine.glsl. */
#extension GL_GOOGLE_include_directive : require
#define BITS 8
#include "matvec_affine.glsl"

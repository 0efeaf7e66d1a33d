#version 450
/* matvec_bf16: bf16 weights; the kernel is matvec_affine.glsl. */
#extension GL_GOOGLE_include_directive : require
#define BITS 16
#include "matvec_affine.glsl"

#version 450
/* Cooperative-matrix flash attention with GL_NV_cooperative_matrix: attn_cm.glsl (see there). */
#extension GL_GOOGLE_include_directive : require
#include "attn_cm.glsl"

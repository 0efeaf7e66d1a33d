#version 450
/* Cooperative-matrix flash attention with GL_KHR_cooperative_matrix: attn_cm.glsl (see there),
 * the same source as attn_cm.coopmat.comp with the KHR syntax. */
#extension GL_GOOGLE_include_directive : require
#define CM_KHR 1
#include "attn_cm.glsl"

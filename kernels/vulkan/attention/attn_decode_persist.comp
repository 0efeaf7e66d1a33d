#version 450
/* Decode attention, persistent workgroups with the combine fused into the last workgroup of
 * each cell: attn_decode.glsl with DEC_PERSIST (see there). */
#extension GL_GOOGLE_include_directive : require
#define DEC_PERSIST 1
#include "attn_decode.glsl"

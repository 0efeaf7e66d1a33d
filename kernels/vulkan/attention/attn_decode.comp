#version 450
/* Decode attention pass 1, direct variant: attn_decode.glsl (see there). */
#extension GL_GOOGLE_include_directive : require
#include "attn_decode.glsl"

/* IEEE binary16 and bf16 <-> f32, bit-exact, round to nearest even. */
#include "kbench.h"

#include <string.h>

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float kb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    if (exp == 0x1F) /* inf / nan */
        return u2f(sign | 0x7F800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return u2f(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 0x1.0p-24f;
        return sign ? -v : v;
    }
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t kb_f32_to_f16(float f)
{
    uint32_t u = f2u(f);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7FFFFFFF;
    if (a >= 0x7F800000u) /* inf or nan (keep a quiet nan) */
        return (uint16_t)(sign | 0x7C00 | (a > 0x7F800000u ? 0x200 : 0));
    if (a >= 0x477FF000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7C00);
    if (a < 0x38800000u) { /* below the smallest normal 2^-14: subnormal or zero */
        float v = u2f(a) * 0x1.0p24f; /* in units of 2^-24, exact scaling */
        /* round half to even on the integer count of 2^-24 */
        uint32_t q = (uint32_t)v;
        float rem = v - (float)q;
        if (rem > 0.5f || (rem == 0.5f && (q & 1)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t e = ((a >> 23) - 112) << 10;
    uint32_t m = (a >> 13) & 0x3FF;
    uint32_t h = e | m;
    uint32_t rest = a & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++; /* may carry into the exponent, which is the right answer */
    return (uint16_t)(sign | h);
}

float kb_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t kb_f32_to_bf16(float f)
{
    uint32_t u = f2u(f);
    if ((u & 0x7FFFFFFF) > 0x7F800000u)
        return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

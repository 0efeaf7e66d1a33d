/* Seeded RNG: xoshiro256** seeded through splitmix64. Same seed, same inputs, everywhere. */
#include "kbench.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void kb_rng_seed(kb_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t kb_rng_u64(kb_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float kb_rng_uniform(kb_rng *r, float lo, float hi)
{
    double u = (double)(kb_rng_u64(r) >> 11) * 0x1.0p-53; /* [0, 1) */
    float v = (float)(lo + (hi - lo) * u);
    return v < hi ? v : lo; /* rounding to float can reach hi */
}

float kb_rng_normal(kb_rng *r)
{
    /* Box-Muller; u1 in (0, 1] so the log is finite. */
    double u1 = ((double)(kb_rng_u64(r) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(kb_rng_u64(r) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

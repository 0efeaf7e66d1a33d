#include "diff.h"

#include <math.h>

double kb_tensor_get(const kb_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case KB_F32: return ((const float *)t->data)[i];
    case KB_F64: return ((const double *)t->data)[i];
    case KB_F16: return kb_f16_to_f32(((const uint16_t *)t->data)[i]);
    case KB_BF16: return kb_bf16_to_f32(((const uint16_t *)t->data)[i]);
    case KB_I32: return ((const int32_t *)t->data)[i];
    case KB_U32: return ((const uint32_t *)t->data)[i];
    case KB_I8: return ((const int8_t *)t->data)[i];
    case KB_U8: return ((const uint8_t *)t->data)[i];
    }
    return NAN;
}

void kb_diff_tensors(const kb_tensor *a, const kb_tensor *b, kb_diff *d)
{
    int64_t n = kb_tensor_numel(b);
    double se = 0, ref2 = 0, dot = 0, a2 = 0, maxabs = 0;
    d->nonfinite = 0;
    d->first_bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double x = kb_tensor_get(a, i), y = kb_tensor_get(b, i);
        if (!isfinite(x)) {
            if (d->first_bad < 0)
                d->first_bad = i;
            d->nonfinite++;
            continue;
        }
        double e = x - y;
        se += e * e;
        ref2 += y * y;
        dot += x * y;
        a2 += x * x;
        if (fabs(e) > maxabs)
            maxabs = fabs(e);
    }
    d->nmse = ref2 > 0 ? se / ref2 : (se > 0 ? INFINITY : 0);
    d->max_abs = maxabs;
    d->cosine = (a2 > 0 && ref2 > 0) ? dot / sqrt(a2 * ref2) : (a2 == ref2 ? 1.0 : 0.0);
    d->guard_ok = kb_tensor_guard_ok(a);
}

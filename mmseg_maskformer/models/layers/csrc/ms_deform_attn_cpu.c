/* Multi-scale deformable attention CPU kernels (float32 and float64), loaded with ctypes
 * by mmseg_maskformer/models/layers/cpu_kernel.py. See ms_deform_attn_cpu_impl.h. */
#include <math.h>
#include <stdint.h>

#define SCALAR float
#define NAME(x) x##_f32
#define EXP expf
#include "ms_deform_attn_cpu_impl.h"
#undef SCALAR
#undef NAME
#undef EXP

#define SCALAR double
#define NAME(x) x##_f64
#define EXP exp
#include "ms_deform_attn_cpu_impl.h"
#undef SCALAR
#undef NAME
#undef EXP

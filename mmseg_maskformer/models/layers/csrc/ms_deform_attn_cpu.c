/* Multi-scale deformable attention CPU kernels (float32 and float64), loaded with ctypes
 * by mmseg_maskformer/models/layers/cpu_kernel.py. See ms_deform_attn_cpu_impl.h. */
#include <math.h>
#include <stdint.h>

/* Built with -fopenmp where the compiler can: the library then needs libgomp.so.1, which
 * resolves to the runtime PyTorch has already loaded (same soname), so the *_omp entry
 * points below run on PyTorch's own intra-op threads. Without OpenMP they run serially
 * and the caller splits the work between threads of its own. */
#ifdef _OPENMP
#include <omp.h>
int msda_openmp(void) { return 1; }
#else
static int omp_get_num_threads(void) { return 1; }
static int omp_get_thread_num(void) { return 0; }
int msda_openmp(void) { return 0; }
#endif
/* The calling thread's share of [0, total) inside a parallel region. */
#define SPLIT_BEGIN (total * omp_get_thread_num() / omp_get_num_threads())
#define SPLIT_END (total * (omp_get_thread_num() + 1) / omp_get_num_threads())

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

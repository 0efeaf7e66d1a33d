/* A small fork-join thread pool. Workers spin briefly on a generation counter (kernels are
 * launched back to back in timing loops), then sleep on a condition variable. Threads are pinned
 * to cores with hwloc when asked, so a thread's pages and caches stay put across samples. */
#include "kbench.h"

#include <hwloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_ITERS 20000

struct kb_pool {
    int n;
    pthread_t *threads;
    atomic_uint gen;    /* bumped for each job */
    atomic_int pending; /* workers not yet done with the job */
    atomic_int stop;
    kb_task_fn fn;
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hwloc_topology_t topo;
    int pin;
};

typedef struct {
    kb_pool *p;
    int tid;
} worker_arg;

static void pin_self(kb_pool *p, int tid)
{
    if (!p->pin || !p->topo)
        return;
    int ncores = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_CORE);
    if (ncores <= 0)
        return;
    hwloc_obj_t core = hwloc_get_obj_by_type(p->topo, HWLOC_OBJ_CORE, tid % ncores);
    if (!core || !core->cpuset)
        return;
    hwloc_cpuset_t set = hwloc_bitmap_dup(core->cpuset);
    hwloc_bitmap_singlify(set);
    hwloc_set_cpubind(p->topo, set, HWLOC_CPUBIND_THREAD); /* best effort */
    hwloc_bitmap_free(set);
}

static void *worker(void *v)
{
    worker_arg wa = *(worker_arg *)v;
    free(v);
    kb_pool *p = wa.p;
    pin_self(p, wa.tid);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        p->fn(p->arg, wa.tid, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

kb_pool *kb_pool_create(int nthreads, int pin)
{
    if (nthreads < 1)
        nthreads = 1;
    kb_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = nthreads;
    p->pin = pin;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pin && (hwloc_topology_init(&p->topo) != 0 || hwloc_topology_load(p->topo) != 0)) {
        p->topo = NULL;
    }
    pin_self(p, 0);
    p->threads = calloc((size_t)nthreads, sizeof(pthread_t));
    for (int i = 1; i < nthreads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        wa->p = p;
        wa->tid = i;
        if (pthread_create(&p->threads[i], NULL, worker, wa) != 0) {
            free(wa);
            p->n = i; /* run with the threads we got */
            break;
        }
    }
    return p;
}

void kb_pool_destroy(kb_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    if (p->topo)
        hwloc_topology_destroy(p->topo);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int kb_pool_size(const kb_pool *p) { return p ? p->n : 1; }

void kb_pool_run(kb_pool *p, kb_task_fn fn, void *arg)
{
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
        cpu_relax();
}

void kb_split(int64_t n, int64_t align, int tid, int nthreads, int64_t *lo, int64_t *hi)
{
    if (align < 1)
        align = 1;
    int64_t units = (n + align - 1) / align;
    int64_t per = units / nthreads, extra = units % nthreads;
    int64_t u0 = tid * per + (tid < extra ? tid : extra);
    int64_t u1 = u0 + per + (tid < extra ? 1 : 0);
    *lo = u0 * align < n ? u0 * align : n;
    *hi = u1 * align < n ? u1 * align : n;
}

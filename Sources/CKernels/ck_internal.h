#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H

// Declarations shared between the kernel files (not part of the module's public header).

typedef void (*ck_task_fn)(void *arg, int tid);

/// Runs fn(arg, t) for t in 0..<n on the GEMM's persistent thread pool (sgemm.c), t = 0 on the calling thread.
/// Returns 0, having run nothing, when the pool is busy (a concurrent or nested call) or cannot start workers.
int ck_pool_run(ck_task_fn fn, void *arg, int n);

#endif

// Memory for the engine's block cache (Sources/Engine/Storage.swift): large blocks mapped from the system
// directly, so that a cached block can be resized (its resident pages kept) instead of freed and mapped anew.
#if defined(__linux__)
#define _GNU_SOURCE  // mremap
#include <sys/mman.h>
#endif

#include "CKernels.h"

#include <stdlib.h>  // defines __GLIBC__ on glibc systems

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int ck_map_large_blocks(long bytes) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, (int)bytes);
#else
    (void)bytes;
    return 0;
#endif
}

void *ck_block_map(long bytes) {
    if (bytes <= 0) return NULL;
#if defined(__linux__)
    void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
#else
    void *p = NULL;
    return posix_memalign(&p, 64, (size_t)bytes) == 0 ? p : NULL;
#endif
}

void ck_block_unmap(void *p, long bytes) {
    if (!p) return;
#if defined(__linux__)
    munmap(p, (size_t)bytes);
#else
    (void)bytes;
    free(p);
#endif
}

void *ck_block_resize(void *p, long old_bytes, long new_bytes) {
#if defined(__linux__)
    if (!p || old_bytes <= 0 || new_bytes <= 0) return NULL;
    void *q = mremap(p, (size_t)old_bytes, (size_t)new_bytes, MREMAP_MAYMOVE);
    return q == MAP_FAILED ? NULL : q;
#else
    (void)p;
    (void)old_bytes;
    (void)new_bytes;
    return NULL;
#endif
}

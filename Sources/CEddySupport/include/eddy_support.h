#ifndef EDDY_SUPPORT_H
#define EDDY_SUPPORT_H

/// Hints the CPU to start loading the cache line at `p`: key lookups in a
/// large state store are memory-latency bound, and the replay and worker
/// loops prefetch the next events' index entries and state ahead of use.
static inline void eddy_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Fixes glibc's mmap threshold at `bytes`. glibc raises the threshold
/// each time a large mmapped block is freed (up to 32 MiB), after which
/// librdkafka's fetch and decompression buffers come from the heap and
/// fragment it: a long-running worker's memory crept up by tens of MB.
/// Fixing the threshold keeps large buffers mmapped and returned on free.
/// Returns 1 on success (0 elsewhere than glibc).
int eddy_fix_mmap_threshold(int bytes);

/// Acquire load and release store of one word, for EddyCore's schema table
/// (written by the thread that resolves schemas, read by decoders).
static inline long long eddy_load_acquire(const long long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void eddy_store_release(long long *p, long long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

#endif

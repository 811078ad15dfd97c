#ifndef EDDY_SUPPORT_H
#define EDDY_SUPPORT_H

/// Hints the CPU to start loading the cache line at `p`: key lookups in a
/// large state store are memory-latency bound, and the replay and worker
/// loops prefetch the next events' index entries and state ahead of use.
static inline void eddy_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif

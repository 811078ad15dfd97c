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

/// Keyed hashing of entity keys (`key: {hash: sha256, salt: ...}`): HMAC-SHA256 with the salt
/// as the key, written as 64 lowercase hex digits. OpenSSL's EVP_MAC (Debian's libssl), the
/// key set once per context and reused for every message.
typedef struct eddy_key_hmac eddy_key_hmac;
/// A context for `salt`; NULL if OpenSSL refuses.
eddy_key_hmac *eddy_key_hmac_new(const void *salt, unsigned long salt_len);
void eddy_key_hmac_free(eddy_key_hmac *h);
/// Writes HMAC-SHA256(salt, data) as 64 hex digits to `out` (not NUL-terminated). Returns 1, or 0 on failure.
int eddy_key_hmac_hex(eddy_key_hmac *h, const void *data, unsigned long len, unsigned char *out);

#endif

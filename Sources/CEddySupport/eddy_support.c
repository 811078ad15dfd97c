#include "eddy_support.h"

#if defined(__GLIBC__)
#include <malloc.h>
int eddy_fix_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
#else
int eddy_fix_mmap_threshold(int bytes) { (void)bytes; return 0; }
#endif

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>

struct eddy_key_hmac { EVP_MAC *mac; EVP_MAC_CTX *ctx; };

eddy_key_hmac *eddy_key_hmac_new(const void *salt, unsigned long salt_len) {
    eddy_key_hmac *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    h->ctx = h->mac ? EVP_MAC_CTX_new(h->mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!h->ctx || !EVP_MAC_init(h->ctx, salt, salt_len, params)) {
        eddy_key_hmac_free(h);
        return NULL;
    }
    return h;
}

void eddy_key_hmac_free(eddy_key_hmac *h) {
    if (!h) return;
    EVP_MAC_CTX_free(h->ctx);
    EVP_MAC_free(h->mac);
    free(h);
}

int eddy_key_hmac_hex(eddy_key_hmac *h, const void *data, unsigned long len, unsigned char *out) {
    static const char digits[] = "0123456789abcdef";
    unsigned char mac[32];
    size_t n = 0;
    /* A NULL key re-initialises with the key already set. */
    if (!EVP_MAC_init(h->ctx, NULL, 0, NULL) || !EVP_MAC_update(h->ctx, data, len)
        || !EVP_MAC_final(h->ctx, mac, &n, sizeof mac) || n != 32)
        return 0;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = (unsigned char)digits[mac[i] >> 4];
        out[2 * i + 1] = (unsigned char)digits[mac[i] & 15];
    }
    return 1;
}

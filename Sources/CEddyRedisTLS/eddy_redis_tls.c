#include "eddy_redis_tls.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static void set_error(redisContext *c, int type, const char *message) {
    c->err = type;
    snprintf(c->errstr, sizeof(c->errstr), "%s", message);
}

/* The context's I/O error after a failed SSL call: a timeout keeps errno
 * EAGAIN (hiredis's SO_RCVTIMEO), which the Swift side reports as one. */
static void set_io_error(redisContext *c, SSL *ssl, int result) {
    int saved = errno;
    int code = SSL_get_error(ssl, result);
    char message[128];
    unsigned long queued = ERR_get_error();
    if (code == SSL_ERROR_ZERO_RETURN) {
        snprintf(message, sizeof(message), "Server closed the connection");
        set_error(c, REDIS_ERR_EOF, message);
        return;
    }
    if ((code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_SYSCALL) &&
        (saved == EAGAIN || saved == EWOULDBLOCK)) {
        snprintf(message, sizeof(message), "Resource temporarily unavailable");
    } else if (code == SSL_ERROR_SYSCALL && saved == 0 && queued == 0) {
        snprintf(message, sizeof(message), "Server closed the connection");
        set_error(c, REDIS_ERR_EOF, message);
        return;
    } else if (queued != 0) {
        ERR_error_string_n(queued, message, sizeof(message));
    } else {
        snprintf(message, sizeof(message), "%s", strerror(saved));
    }
    ERR_clear_error();
    errno = saved;
    set_error(c, REDIS_ERR_IO, message);
}

void *eddy_tls_connect(void *context, const char *host, const eddy_tls_settings *s,
                       char *error, size_t error_size) {
    redisContext *c = context;
    const char *name = s->server_name ? s->server_name : host;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) { snprintf(error, error_size, "cannot create a TLS context"); return NULL; }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (s->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int loaded = s->ca_file ? SSL_CTX_load_verify_locations(ctx, s->ca_file, NULL)
                                : SSL_CTX_set_default_verify_paths(ctx);
        if (loaded != 1) {
            snprintf(error, error_size, "cannot load the CA file %s for %s", s->ca_file ? s->ca_file : "(system default)", host);
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    if (s->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, s->cert_file) != 1) {
            snprintf(error, error_size, "cannot load the client certificate %s", s->cert_file);
            SSL_CTX_free(ctx);
            return NULL;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, s->key_file ? s->key_file : s->cert_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(error, error_size, "cannot load the client key %s (or it does not match %s)",
                     s->key_file ? s->key_file : s->cert_file, s->cert_file);
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the session holds its own reference */
    if (!ssl) { snprintf(error, error_size, "cannot create a TLS session"); return NULL; }
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(ssl, name);
    if (!s->insecure) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        if (is_ip) X509_VERIFY_PARAM_set1_ip_asc(param, name);
        else X509_VERIFY_PARAM_set1_host(param, name, 0);
    }
    SSL_set_fd(ssl, c->fd);
    ERR_clear_error();
    int result = SSL_connect(ssl);
    if (result != 1) {
        long verify = SSL_get_verify_result(ssl);
        unsigned long queued = ERR_get_error();
        int saved = errno;
        if (verify != X509_V_OK) {
            snprintf(error, error_size, "TLS handshake with %s failed: the server's certificate was not accepted: %s",
                     name, X509_verify_cert_error_string(verify));
        } else if (queued != 0) {
            char reason[160];
            ERR_error_string_n(queued, reason, sizeof(reason));
            snprintf(error, error_size, "TLS handshake with %s failed: %s", name, reason);
        } else if (saved == EAGAIN || saved == EWOULDBLOCK) {
            snprintf(error, error_size, "TLS handshake with %s timed out (is it a TLS port?)", name);
        } else {
            snprintf(error, error_size, "TLS handshake with %s failed: %s (is it a TLS port?)", name,
                     saved ? strerror(saved) : "the connection was closed");
        }
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

void eddy_tls_free(void *session) {
    if (!session) return;
    SSL *ssl = session;
    SSL_shutdown(ssl);
    SSL_free(ssl);
}

int eddy_tls_buffer_write(void *context, void *session, int *done) {
    redisContext *c = context;
    SSL *ssl = session;
    if (c->err) return REDIS_ERR;
    size_t length = sdslen(c->obuf);
    if (length > 0) {
        ERR_clear_error();
        int written = SSL_write(ssl, c->obuf, (int)(length > 1 << 30 ? 1 << 30 : length));
        if (written <= 0) {
            if (errno == EINTR && SSL_get_error(ssl, written) == SSL_ERROR_SYSCALL) {
                /* interrupted: try again */
            } else {
                set_io_error(c, ssl, written);
                return REDIS_ERR;
            }
        } else if ((size_t)written == length) {
            sdsfree(c->obuf);
            c->obuf = sdsempty();
        } else {
            sdsrange(c->obuf, written, -1);
        }
    }
    if (done) *done = sdslen(c->obuf) == 0;
    return REDIS_OK;
}

static int reply_from_reader(redisContext *c, void **reply) {
    if (redisReaderGetReply(c->reader, reply) == REDIS_ERR) {
        set_error(c, c->reader->err, c->reader->errstr);
        return REDIS_ERR;
    }
    return REDIS_OK;
}

int eddy_tls_get_reply(void *context, void *session, void **reply) {
    redisContext *c = context;
    SSL *ssl = session;
    void *aux = NULL;
    if (reply_from_reader(c, &aux) == REDIS_ERR) return REDIS_ERR;
    if (aux == NULL) {
        int done = 0;
        do {
            if (eddy_tls_buffer_write(c, ssl, &done) == REDIS_ERR) return REDIS_ERR;
        } while (!done);
        char buffer[16 * 1024];
        do {
            ERR_clear_error();
            int n = SSL_read(ssl, buffer, sizeof(buffer));
            if (n <= 0) {
                if (errno == EINTR && SSL_get_error(ssl, n) == SSL_ERROR_SYSCALL) continue;
                set_io_error(c, ssl, n);
                return REDIS_ERR;
            }
            if (redisReaderFeed(c->reader, buffer, (size_t)n) != REDIS_OK) {
                set_error(c, c->reader->err, c->reader->errstr);
                return REDIS_ERR;
            }
            if (reply_from_reader(c, &aux) == REDIS_ERR) return REDIS_ERR;
        } while (aux == NULL);
    }
    if (reply) *reply = aux;
    else freeReplyObject(aux);
    return REDIS_OK;
}

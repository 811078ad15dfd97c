#ifndef EDDY_REDIS_TLS_H
#define EDDY_REDIS_TLS_H
#include <stddef.h>

/* TLS for hiredis 0.14 connections, which have none: hiredis still opens the
 * TCP socket and keeps its output buffer and RESP reader; these functions run
 * an OpenSSL session on the socket and replace hiredis's two I/O calls
 * (redisBufferWrite, redisGetReply). Contexts and sessions are opaque
 * pointers here so that Swift sees hiredis's types from one module only. */

/* Settings of one TLS endpoint. NULL strings: not set. */
typedef struct eddy_tls_settings {
    const char *ca_file;      /* PEM CA bundle; NULL: the system's default paths */
    const char *cert_file;    /* PEM client certificate (mutual TLS) */
    const char *key_file;     /* PEM private key of cert_file */
    const char *server_name;  /* SNI and the name verified; NULL: the host connected to */
    int insecure;             /* 1: do not verify the server's certificate */
} eddy_tls_settings;

/* Runs the TLS handshake on the connected hiredis context `context` (a
 * redisContext *) for `host`. Returns the session (an SSL *), or NULL with a
 * message naming the host and the reason in `error`. */
void *eddy_tls_connect(void *context, const char *host, const eddy_tls_settings *settings,
                       char *error, size_t error_size);

/* Frees a session from eddy_tls_connect (sends close_notify when it can). */
void eddy_tls_free(void *session);

/* redisBufferWrite over TLS: writes the context's output buffer; *done is 1
 * once it is empty. 0 (REDIS_OK) or -1 with the context's err/errstr set. */
int eddy_tls_buffer_write(void *context, void *session, int *done);

/* redisGetReply over TLS: a parsed reply from the reader, else writes all
 * pending output and reads until one is complete. */
int eddy_tls_get_reply(void *context, void *session, void **reply);

#endif

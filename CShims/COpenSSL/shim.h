// The Noise module hashes with OpenSSL's SHA256_CTX functions (SHA extensions where the CPU has
// them), which OpenSSL 3 marks deprecated in favour of EVP objects that allocate. The define
// hides deprecation warnings for the whole module (TLS included): check OpenSSL's notes when
// moving to a new major version.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/bio.h>
#include <openssl/sha.h>
#include <string.h>

// OpenSSL spells several calls as function-like macros, which Swift cannot import; these
// wrappers give them a name. Prefixed sb_tls_.

static inline int sb_tls_ctx_restrict(SSL_CTX *ctx) {
    // TLS 1.2 and 1.3 only; 1.2 limited to forward-secret AEAD suites.
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return 0;
    if (SSL_CTX_set_cipher_list(ctx,
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) return 0;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Idle connections give their record buffers back.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return 1;
}

// ALPN: the node speaks http/1.1 only. A client that offers ALPN without it is refused.
static int sb_tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                              const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    static const unsigned char ours[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, ours, sizeof(ours), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

static inline void sb_tls_ctx_serve_alpn(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, sb_tls_alpn_select, NULL);
}

static inline int sb_tls_ctx_offer_alpn(SSL_CTX *ctx) {
    static const unsigned char ours[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
    return SSL_CTX_set_alpn_protos(ctx, ours, sizeof(ours)) == 0;
}

static inline int sb_tls_set_server_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/// Bytes waiting in a memory BIO and where they start.
static inline long sb_tls_bio_pending_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

static inline int sb_tls_bio_reset(BIO *bio) {
    return (int)BIO_reset(bio);
}

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
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
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

// ChaCha20-Poly1305 (RFC 8439 section 2.8) through EVP, for the Noise module's longer frames:
// OpenSSL's vector code seals 1,400 bytes in ~2/3 and 16 KB in ~1/3 of libsodium's time here,
// while libsodium stays faster for short ones (CipherState picks by length). One context per
// direction per thread, made at first use and freed when the thread exits (a pthread key's
// destructor); the key and nonce are set on every call (ChaCha20's key setup is a copy), so no
// connection holds OpenSSL state. A context keeps the last key it was given until the next long
// frame on its thread replaces it or the thread ends (the free cleanses it): clearing it after
// every frame would cost a second initialisation per frame. Prefixed sb_aead_.

typedef struct {
    EVP_CIPHER_CTX *seal;
    EVP_CIPHER_CTX *open;
} sb_aead_contexts;

// A thread whose contexts could not be made keeps this mark instead: it uses libsodium from
// then on rather than trying again on every long frame.
#define SB_AEAD_UNAVAILABLE ((void *)1)

static void sb_aead_contexts_free(void *pointer) {
    if (pointer == NULL || pointer == SB_AEAD_UNAVAILABLE) return;
    sb_aead_contexts *contexts = (sb_aead_contexts *)pointer;
    EVP_CIPHER_CTX_free(contexts->seal);
    EVP_CIPHER_CTX_free(contexts->open);
    OPENSSL_free(contexts);
}

/// This thread's contexts, or NULL when they cannot be made (the caller uses libsodium).
/// Everything static lives inside this one function: Swift emits a header's inline functions
/// with their local statics, but not its file-scope variables. The contexts are found through
/// the thread key itself (not a cached pointer), so nothing can reach them once the key's
/// destructor has freed them at thread exit.
static inline sb_aead_contexts *sb_aead_thread_contexts(void) {
    static pthread_key_t key;
    static int keyState = 0;  // 0: not made, 1: being made, 2: made, 3: failed
    int state = __atomic_load_n(&keyState, __ATOMIC_ACQUIRE);
    if (state == 2) {
        void *value = pthread_getspecific(key);
        if (value == SB_AEAD_UNAVAILABLE) return NULL;
        if (value != NULL) return (sb_aead_contexts *)value;
    } else {
        if (state == 0) {
            int expected = 0;
            if (__atomic_compare_exchange_n(&keyState, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                int made = pthread_key_create(&key, sb_aead_contexts_free) == 0;
                __atomic_store_n(&keyState, made ? 2 : 3, __ATOMIC_RELEASE);
            }
        }
        while ((state = __atomic_load_n(&keyState, __ATOMIC_ACQUIRE)) == 1) sched_yield();
        if (state != 2) return NULL;
    }
    sb_aead_contexts *contexts = (sb_aead_contexts *)OPENSSL_zalloc(sizeof(sb_aead_contexts));
    if (contexts != NULL) {
        contexts->seal = EVP_CIPHER_CTX_new();
        contexts->open = EVP_CIPHER_CTX_new();
    }
    if (contexts == NULL || contexts->seal == NULL || contexts->open == NULL
        || EVP_EncryptInit_ex(contexts->seal, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1
        || EVP_DecryptInit_ex(contexts->open, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1
        || pthread_setspecific(key, contexts) != 0) {
        sb_aead_contexts_free(contexts);
        ERR_clear_error();
        (void)pthread_setspecific(key, SB_AEAD_UNAVAILABLE);
        return NULL;
    }
    return contexts;
}

/// Whether this thread seals and opens long texts with OpenSSL (for tests): 1, or 0 when its
/// contexts could not be made.
static inline int sb_aead_available(void) {
    return sb_aead_thread_contexts() != NULL;
}

/// Keys the context (`seal` or `open`: each keeps the direction it was made for) with `key` and
/// `nonce` and feeds it the associated data. 1, or 0 when OpenSSL could not (nothing written).
static inline int sb_aead_start(EVP_CIPHER_CTX *ctx, const unsigned char *key, const unsigned char *nonce,
                                const unsigned char *ad, int adCount) {
    int written = 0;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, -1) != 1
        || (adCount > 0 && EVP_CipherUpdate(ctx, NULL, &written, ad, adCount) != 1)) {
        ERR_clear_error();
        return 0;
    }
    return 1;
}

/// Encrypts `count` bytes at `buffer` in place and writes the 16-byte tag after them.
/// Returns 1; -1 if OpenSSL could not start (`buffer` untouched: the caller may use libsodium
/// instead); 0 if it failed part-way (`buffer` spoilt: the frame must not be sent).
static inline int sb_aead_seal(const unsigned char *key, const unsigned char *nonce,
                               const unsigned char *ad, int adCount, unsigned char *buffer, int count) {
    sb_aead_contexts *contexts = sb_aead_thread_contexts();
    if (contexts == NULL || !sb_aead_start(contexts->seal, key, nonce, ad, adCount)) return -1;
    EVP_CIPHER_CTX *ctx = contexts->seal;
    int written = 0;
    if (EVP_EncryptUpdate(ctx, buffer, &written, buffer, count) != 1
        || EVP_EncryptFinal_ex(ctx, buffer + count, &written) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, buffer + count) != 1) {
        ERR_clear_error();
        return 0;
    }
    return 1;
}

/// Decrypts `count` bytes at `buffer` (the 16-byte tag last) in place. Returns 1 when the tag
/// verifies, 0 otherwise, and then zeroes the `count - 16` bytes it wrote, as libsodium does:
/// unauthenticated plaintext never stays behind. -1 if OpenSSL could not run at all (`buffer`
/// untouched: the caller may use libsodium instead).
static inline int sb_aead_open(const unsigned char *key, const unsigned char *nonce,
                               const unsigned char *ad, int adCount, unsigned char *buffer, int count) {
    if (count < 16) return 0;
    sb_aead_contexts *contexts = sb_aead_thread_contexts();
    if (contexts == NULL || !sb_aead_start(contexts->open, key, nonce, ad, adCount)) return -1;
    EVP_CIPHER_CTX *ctx = contexts->open;
    int length = count - 16;
    int written = 0;
    if (EVP_DecryptUpdate(ctx, buffer, &written, buffer, length) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, buffer + length) != 1
        || EVP_DecryptFinal_ex(ctx, buffer + length, &written) != 1) {
        OPENSSL_cleanse(buffer, (size_t)length);
        ERR_clear_error();
        return 0;
    }
    return 1;
}

/* What one ChaCha20-Poly1305 operation costs on this machine, by message size: libsodium (what the
 * node uses for its transport) and OpenSSL's EVP interface, one context reused. Every transport
 * frame of the node is one such operation, so the fixed cost per call bounds how cheap a small
 * frame can be.
 *   cc -O2 Benchmarks/aead-cost/aead_cost.c -lsodium -lcrypto -o .build/bench/aead-cost
 *   taskset -c 0 .build/bench/aead-cost
 */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <time.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
    if (sodium_init() < 0) return 1;
    static unsigned char key[32] = {1}, nonce[12], message[65536], out[65536], tag[16];
    const int sizes[] = {64, 170, 1400, 4096, 16384};
    const int iterations = 200000;
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    EVP_CIPHER_CTX *context = EVP_CIPHER_CTX_new();
    if (cipher == NULL || context == NULL || !EVP_EncryptInit_ex2(context, cipher, key, nonce, NULL)) return 1;
    printf("%8s %14s %14s\n", "bytes", "libsodium ns", "openssl ns");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int size = sizes[s];
        double start = seconds();
        for (int i = 0; i < iterations; i++) {
            nonce[0] = (unsigned char)i;
            crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, tag, NULL, message, (unsigned long long)size, NULL, 0,
                                                               NULL, nonce, key);
        }
        const double sodium = (seconds() - start) / iterations * 1e9;
        start = seconds();
        for (int i = 0; i < iterations; i++) {
            int written = 0;
            nonce[0] = (unsigned char)i;
            if (!EVP_EncryptInit_ex2(context, NULL, NULL, nonce, NULL) ||
                !EVP_EncryptUpdate(context, out, &written, message, size) ||
                !EVP_EncryptFinal_ex(context, out + written, &written) ||
                !EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, 16, tag)) return 1;
        }
        const double openssl = (seconds() - start) / iterations * 1e9;
        printf("%8d %14.1f %14.1f\n", size, sodium, openssl);
    }
    EVP_CIPHER_CTX_free(context);
    EVP_CIPHER_free(cipher);
    return 0;
}

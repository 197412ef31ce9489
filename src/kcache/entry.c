/* SPDX-License-Identifier: MIT */
/* SHA-256 through OpenSSL's EVP, and the cache entry's format: writing a header and
 * checking a whole entry read from disk (the fuzzer's target: tests/fuzz/
 * fuzz_kcache_entry.c). Pure functions over memory: no file, no allocation of kiln's,
 * no global state; any thread. kcache.h draws the layout. */
#include <openssl/evp.h>
#include <string.h>

#include "kcache/kcache.h"

static const unsigned char magic[8] = {'K', 'I', 'L', 'N', 'K', 'C', 'E', '\n'};
#define OFF_FORMAT 8u
#define OFF_HEADER_BYTES 12u
#define OFF_PAYLOAD_BYTES 16u
#define OFF_KEY 24u
#define OFF_NS 56u
#define OFF_CREATED 88u
#define OFF_SUM 96u

bool kiln__sha256_begin(kiln__sha256 *h) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(c);
    c = NULL;
  }
  h->ctx = c;
  return c != NULL;
}

void kiln__sha256_add(kiln__sha256 *h, const void *data, size_t bytes) {
  if (bytes)
    EVP_DigestUpdate(h->ctx, data, bytes);
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (unsigned i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (unsigned i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (unsigned i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (unsigned i = 0; i < 4; i++)
    v |= (uint32_t)p[i] << (8 * i);
  return v;
}

void kiln__sha256_field(kiln__sha256 *h, const char *label, const void *data, size_t bytes) {
  unsigned char len[8];
  kiln__sha256_add(h, label, strlen(label) + 1);
  put_u64(len, bytes);
  kiln__sha256_add(h, len, sizeof len);
  kiln__sha256_add(h, data, bytes);
}

void kiln__sha256_end(kiln__sha256 *h, unsigned char out[32]) {
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != 32)
    memset(out, 0, 32);
  EVP_MD_CTX_free(h->ctx);
  h->ctx = NULL;
}

bool kiln__sha256_of(const void *data, size_t bytes, unsigned char out[32]) {
  kiln__sha256 h;
  if (!kiln__sha256_begin(&h))
    return false;
  kiln__sha256_add(&h, data, bytes);
  kiln__sha256_end(&h, out);
  return true;
}

void kiln__kcache_hex(const kiln__kcache_key *key, char out[2 * KILN__KCACHE_KEY_BYTES + 1]) {
  static const char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < KILN__KCACHE_KEY_BYTES; i++) {
    out[2 * i] = digits[key->b[i] >> 4];
    out[2 * i + 1] = digits[key->b[i] & 15];
  }
  out[2 * KILN__KCACHE_KEY_BYTES] = '\0';
}

bool kiln__kcache_ns_valid(const char *ns) {
  size_t n = 0;
  for (; ns[n]; n++) {
    char c = ns[n];
    if (n + 1 >= KILN__KCACHE_NS_BYTES ||
        !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  }
  return n > 0;
}

/* The checksum: SHA-256 of the header before it, then the payload. */
static bool entry_sum(const unsigned char *hdr, const void *payload, size_t bytes,
                      unsigned char out[32]) {
  kiln__sha256 h;
  if (!kiln__sha256_begin(&h))
    return false;
  kiln__sha256_add(&h, hdr, OFF_SUM);
  kiln__sha256_add(&h, payload, bytes);
  kiln__sha256_end(&h, out);
  return true;
}

void kiln__kcache_entry_header(unsigned char hdr[KILN__KCACHE_HEADER_BYTES], const char *ns,
                               const kiln__kcache_key *key, const void *payload, size_t bytes,
                               uint64_t created_ns) {
  memset(hdr, 0, KILN__KCACHE_HEADER_BYTES);
  memcpy(hdr, magic, sizeof magic);
  put_u32(hdr + OFF_FORMAT, KILN__KCACHE_FORMAT);
  put_u32(hdr + OFF_HEADER_BYTES, KILN__KCACHE_HEADER_BYTES);
  put_u64(hdr + OFF_PAYLOAD_BYTES, bytes);
  memcpy(hdr + OFF_KEY, key->b, KILN__KCACHE_KEY_BYTES);
  size_t ns_len = strnlen(ns, KILN__KCACHE_NS_BYTES - 1);
  memcpy(hdr + OFF_NS, ns, ns_len);
  put_u64(hdr + OFF_CREATED, created_ns);
  if (!entry_sum(hdr, payload, bytes, hdr + OFF_SUM))
    memset(hdr + OFF_SUM, 0, 32); /* never matches: read back as corrupt, then rebuilt */
}

const char *kiln__kcache_entry_check(const unsigned char *buf, size_t len, const char *ns,
                                     const kiln__kcache_key *key, size_t *payload_bytes) {
  *payload_bytes = 0;
  if (len == 0)
    return "the file is empty";
  if (len < KILN__KCACHE_HEADER_BYTES)
    return "the file is shorter than an entry's header (truncated)";
  if (memcmp(buf, magic, sizeof magic) != 0)
    return "it does not start with a kiln cache entry's magic bytes";
  if (get_u32(buf + OFF_FORMAT) != KILN__KCACHE_FORMAT)
    return "it is of another cache format version";
  if (get_u32(buf + OFF_HEADER_BYTES) != KILN__KCACHE_HEADER_BYTES)
    return "its header size is wrong";
  uint64_t bytes = get_u64(buf + OFF_PAYLOAD_BYTES);
  if (bytes != len - KILN__KCACHE_HEADER_BYTES)
    return bytes > len - KILN__KCACHE_HEADER_BYTES
               ? "the file is shorter than its header says (truncated or torn)"
               : "the file is longer than its header says";
  if (key && memcmp(buf + OFF_KEY, key->b, KILN__KCACHE_KEY_BYTES) != 0)
    return "its key is not the one its file name says";
  const unsigned char *hns = buf + OFF_NS;
  if (hns[KILN__KCACHE_NS_BYTES - 1] != '\0')
    return "its namespace is not terminated";
  if (ns && strcmp((const char *)hns, ns) != 0)
    return "its namespace is not the folder it is in";
  unsigned char sum[32];
  if (!entry_sum(buf, buf + KILN__KCACHE_HEADER_BYTES, (size_t)bytes, sum))
    return "SHA-256 is unavailable (OpenSSL could not allocate)";
  if (memcmp(sum, buf + OFF_SUM, 32) != 0)
    return "its checksum does not match its contents (corrupted)";
  *payload_bytes = (size_t)bytes;
  return NULL;
}

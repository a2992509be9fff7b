/* The secret store: real credential values, loaded from their sources and
 * held where nothing else can print them.
 *
 * A store is immutable and refcounted. It is built from the `secrets:`
 * config entries (every source read, every value checked) and dropped when
 * its last reference goes: rotation is "build a new store, swap it in";
 * requests in flight keep the store they started with, and the old values
 * are wiped when the last of them finishes.
 *
 * Values live in one mmap'd region locked with mlock (never swapped) and
 * marked MADV_DONTDUMP (never in a core dump), read-only once built, wiped
 * with explicit_bzero before it is unmapped. No function here returns a
 * value: only the injector and the redactor (store-t.h) see them. */
#ifndef SLUICE_SECRETS_STORE_H
#define SLUICE_SECRETS_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/buf.h"

/* Longest value a source may hold (a PEM key fits; a whole file does not). */
#define SL_SECRET_VALUE_MAX (16 * 1024)
/* Shortest value accepted: a shorter one would match ordinary traffic, and
 * redaction and the real-value refusal would fire on noise. */
#define SL_SECRET_VALUE_MIN 8

typedef struct sl_secret_store sl_secret_store_t;

/* Read every source of cfg[0..n) and build a store (reference count 1).
 * Returns NULL with one line per problem appended to `err` (naming the
 * secret and its source, never the value): variable not set, file missing,
 * unreadable, not a regular file, empty or over SL_SECRET_VALUE_MAX, value
 * with CR, LF or NUL, shorter than SL_SECRET_VALUE_MIN, a placeholder that
 * equals or contains any secret's value. n == 0 gives an empty store. A
 * failed mlock/madvise (RLIMIT_MEMLOCK) is not fatal: it is logged as a
 * warning and reported by sl_secret_store_locked. */
sl_secret_store_t *sl_secret_store_new(const sl_secret_cfg_t *cfg, size_t n, sl_buf_t *err);

/* Take another reference (thread-safe). */
sl_secret_store_t *sl_secret_store_ref(sl_secret_store_t *s);

/* Drop a reference; the last one wipes the values and frees everything.
 * NULL is a no-op. Thread-safe. */
void sl_secret_store_unref(sl_secret_store_t *s);

/* Number of secrets. */
size_t sl_secret_store_count(const sl_secret_store_t *s);

/* Name of secret i (for audit events and logs), or NULL if out of range. */
const char *sl_secret_store_name(const sl_secret_store_t *s, size_t i);

/* Placeholder of secret i (what the sandbox holds), or NULL. */
const char *sl_secret_store_placeholder(const sl_secret_store_t *s, size_t i);

/* Did mlock succeed for the value memory? */
bool sl_secret_store_locked(const sl_secret_store_t *s);

/* Append "NAME=PLACEHOLDER\n" per secret for the sandbox's environment:
 * NAME is the source's env variable (the variable the agent's SDK reads),
 * or SLUICE_SECRET_<NAME> upper-cased for file sources. */
void sl_secret_store_sandbox_env(const sl_secret_store_t *s, sl_buf_t *out);

/* Test hook: when set, called with the value region after it has been wiped
 * and before it is unmapped, so a test can check it is all zero. */
extern void (*sl_secret_store_wipe_hook)(const unsigned char *p, size_t n);

#endif

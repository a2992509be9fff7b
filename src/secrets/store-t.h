/* Store internals, for the injector and the redactor only. Nothing outside
 * src/secrets/ may include this header: it is how values stay unprintable. */
#ifndef SLUICE_SECRETS_STORE_T_H
#define SLUICE_SECRETS_STORE_T_H

#include <stdatomic.h>

#include "policy/hostglob.h"
#include "secrets/match.h"
#include "secrets/store.h"

/* Encoded forms of a value an upstream may echo; the redactor replaces each
 * by the same form of the placeholder. */
typedef enum sl_secret_variant {
    SL_SECRET_VAR_B64_0 = 0, /* base64, value at offset 0 mod 3 (Basic credentials, ...) */
    SL_SECRET_VAR_B64_1,     /* base64, offset 1 mod 3 */
    SL_SECRET_VAR_B64_2,     /* base64, offset 2 mod 3 */
    SL_SECRET_VAR_JSON,      /* '/' escaped as "\/" (off when the value has no '/') */
    SL_SECRET_VAR_PCT,       /* percent-encoded as the injector writes it into URLs (off
                                when the value needs no encoding) */
    SL_SECRET_VARIANTS
} sl_secret_variant_t;

/* One loaded secret. */
typedef struct sl_secret {
    sl_secret_cfg_t cfg;        /* deep copy of the config entry (owned) */
    sl_hostset_t *hosts;        /* compiled cfg.hosts */
    const unsigned char *value; /* the real value, in the locked region */
    size_t value_n;             /* its length */
    const unsigned char *ph;    /* the placeholder, in the region too */
    size_t ph_n;                /* its length */
} sl_secret_t;

struct sl_secret_store {
    atomic_long refs;        /* owners */
    size_t n;                /* secrets */
    sl_secret_t *sec;        /* n secrets (heap) */
    unsigned char *region;   /* mmap'd: the matcher, then values and placeholders */
    size_t region_n;         /* its size (whole pages) */
    bool locked;             /* mlock succeeded */
    size_t n_pat;            /* patterns in m: (2 + SL_SECRET_VARIANTS) * n */
    sl_smatch_t *m;          /* in region: pattern i = value of secret i, n + i = its
                                placeholder, 2n + SL_SECRET_VARIANTS * i + k = variant k
                                of its value (sl_secret_variant_t) */
    sl_smatch_act_t *redact; /* n_pat actions: values and their variants -> placeholders */
    sl_smatch_act_t *detect; /* n_pat actions: flag every value and every placeholder */
};

#endif

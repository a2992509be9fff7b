/* Store internals, for the injector and the redactor only. Nothing outside
 * src/secrets/ may include this header: it is how values stay unprintable. */
#ifndef SLUICE_SECRETS_STORE_T_H
#define SLUICE_SECRETS_STORE_T_H

#include <stdatomic.h>

#include "policy/hostglob.h"
#include "secrets/match.h"
#include "secrets/store.h"

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
    sl_smatch_t *m;          /* in region: pattern i = value of secret i, n + i = placeholder */
    sl_smatch_act_t *redact; /* 2n actions: values -> their placeholders, placeholders off */
    sl_smatch_act_t *detect; /* 2n actions: flag every value and every placeholder */
};

#endif

/* Validators: structural and checksum checks run on candidate matches only
 * (names and semantics are the contract in rules/README.md). Each is a pure
 * function over the matched bytes and tolerates surrounding context the
 * pattern may have included (a label, separators). */
#ifndef SLUICE_INSPECT_VALIDATORS_H
#define SLUICE_INSPECT_VALIDATORS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum sl_validator {
    SL_VAL_NONE = 0,
    SL_VAL_LUHN,
    SL_VAL_IBAN,
    SL_VAL_BIP39,
    SL_VAL_BASE58CHECK,
    SL_VAL_CRC32_BASE62,
    SL_VAL_JWT,
    SL_VAL_SSN,
    SL_VAL_PEM,
    SL_VAL_ENTROPY,
    SL_VAL__COUNT,
} sl_validator_t;

/* Validator by name as written in a rule, -1 if unknown. */
int sl_validator_parse(const char *name);
const char *sl_validator_name(sl_validator_t v);
/* True if the validator accepts the match `p[0..n)`. SL_VAL_NONE and
 * SL_VAL_ENTROPY (handled by the caller through min_entropy) accept all. */
bool sl_validate(sl_validator_t v, const char *p, size_t n);
/* Shannon entropy of the bytes, in bits per byte (0 for n == 0). */
double sl_entropy(const char *p, size_t n);

/* The individual checks, exposed for tests. */
bool sl_val_luhn(const char *p, size_t n);
bool sl_val_iban(const char *p, size_t n);
bool sl_val_bip39(const char *p, size_t n);
/* Only phrases ending at the last word of p: the engine's form, called at
 * every candidate end, so together the calls cover every window. */
bool sl_val_bip39_tail(const char *p, size_t n);
bool sl_val_base58check(const char *p, size_t n);
bool sl_val_crc32_base62(const char *p, size_t n);
bool sl_val_jwt(const char *p, size_t n);
bool sl_val_ssn(const char *p, size_t n);
bool sl_val_pem(const char *p, size_t n);

#endif

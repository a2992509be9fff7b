/* The BIP-39 English word list (2048 words, sorted), generated from the npm
 * package bip39 by tools/gen_bip39.py. */
#ifndef SLUICE_INSPECT_BIP39_WORDS_H
#define SLUICE_INSPECT_BIP39_WORDS_H

#define SL_BIP39_NWORDS 2048

/* Word i has the 11-bit value i; the array is in strcmp order. */
extern const char *const sl_bip39_words[SL_BIP39_NWORDS];

#endif

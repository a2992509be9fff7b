/* Validators and decoders as pure functions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "inspect/decode.h"
#include "inspect/validators.h"

#define S(x) x, strlen(x)

static void luhn(void **state)
{
    (void)state;
    assert_true(sl_val_luhn(S("4111 1111 1111 1111")));
    assert_true(sl_val_luhn(S("5500-0000-0000-0004")));
    assert_true(sl_val_luhn(S("378282246310005")));
    assert_false(sl_val_luhn(S("4111 1111 1111 1112")));
    assert_false(sl_val_luhn(S("0000000000")));              /* too short */
    assert_false(sl_val_luhn(S("41111111111111111111111"))); /* too long */
}

static void iban(void **state)
{
    (void)state;
    assert_true(sl_val_iban(S("GB82 WEST 1234 5698 7654 32")));
    assert_true(sl_val_iban(S("iban: DE89370400440532013000")));
    assert_true(sl_val_iban(S("NO9386011117947")));
    assert_false(sl_val_iban(S("GB82 WEST 1234 5698 7654 33")));
    assert_false(sl_val_iban(S("ZZ82WEST12345698765432"))); /* unknown country */
    assert_false(sl_val_iban(S("DE8937040044053201300")));  /* too short for DE */
}

static void bip39(void **state)
{
    (void)state;
    assert_true(sl_val_bip39(S("abandon abandon abandon abandon abandon abandon abandon abandon "
                               "abandon abandon abandon about")));
    assert_true(sl_val_bip39(S("my seed: legal winner thank year wave sausage worth useful legal "
                               "winner thank yellow, keep it")));
    assert_true(sl_val_bip39(
        S("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo "
          "zoo vote")));
    assert_false(sl_val_bip39(S("abandon abandon abandon abandon abandon abandon abandon abandon "
                                "abandon abandon abandon abandon")));
    assert_false(sl_val_bip39(S("legal winner thank year wave sausage worth useful legal winner "
                                "thank notaword")));
}

static void bip39_tail(void **state)
{
    (void)state;
    assert_true(sl_val_bip39_tail(S("seed: legal winner thank year wave sausage worth useful legal "
                                    "winner thank yellow")));
    /* The phrase must end at the last word. */
    assert_false(sl_val_bip39_tail(S("legal winner thank year wave sausage worth useful legal "
                                     "winner thank yellow and")));
    assert_false(sl_val_bip39_tail(S("winner thank year wave sausage worth useful legal "
                                     "winner thank yellow")));
}

static void base58check(void **state)
{
    (void)state;
    assert_true(sl_val_base58check(S("5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ")));
    assert_true(sl_val_base58check(S("addr 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 ok")));
    assert_false(sl_val_base58check(S("5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTK")));
    assert_false(sl_val_base58check(S("short")));
}

static void crc32_base62(void **state)
{
    (void)state;
    assert_true(sl_val_crc32_base62(S("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")));
    assert_true(sl_val_crc32_base62(S("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")));
    assert_false(sl_val_crc32_base62(S("ghp_Ky9Pf34qY6Nb3wWD25RQ4F5ZR3qa7yAAAAAA")));
    assert_false(sl_val_crc32_base62(S("ghp_tooShort")));
    assert_true(
        sl_val_crc32_base62(S("github_pat_11ABCDEFG0123456789abc_"
                              "0123456789abcdefghijABCDEFGHIJ0123456789abcdefghijABCDEFGHI")));
    assert_false(sl_val_crc32_base62(S("github_pat_11ABC_0123")));
}

static void jwt(void **state)
{
    (void)state;
    assert_true(sl_val_jwt(S("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
                             "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")));
    /* Header without "alg", or not JSON, or only two parts. */
    assert_false(sl_val_jwt(S("eyJmb28iOiJiYXIifQ.eyJzdWIiOiIxIn0.abc")));
    assert_false(sl_val_jwt(S("eyJub3QganNvbg.eyJzdWIiOiIxIn0.abc")));
    assert_false(sl_val_jwt(S("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0")));
}

static void ssn(void **state)
{
    (void)state;
    assert_true(sl_val_ssn(S("SSN: 123-45-6789")));
    assert_true(sl_val_ssn(S("123456789")));
    assert_false(sl_val_ssn(S("000-12-3456")));
    assert_false(sl_val_ssn(S("666-12-3456")));
    assert_false(sl_val_ssn(S("912-12-3456")));
    assert_false(sl_val_ssn(S("123-00-4567")));
    assert_false(sl_val_ssn(S("123-45-0000")));
    assert_false(sl_val_ssn(S("123-45-67890")));
}

static void pem(void **state)
{
    (void)state;
    assert_true(sl_val_pem(S("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                             "-----END PRIVATE KEY-----")));
    assert_true(sl_val_pem(S("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                             "DEK-Info: AES-128-CBC,AB\n\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                             "-----END RSA PRIVATE KEY-----")));
    assert_false(sl_val_pem(S("-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                              "-----END EC PRIVATE KEY-----")));
    assert_false(sl_val_pem(S("-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n"
                              "-----END PRIVATE KEY-----")));
    assert_false(sl_val_pem(S("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq")));
}

static void entropy_and_names(void **state)
{
    (void)state;
    assert_true(sl_entropy(S("aaaaaaaa")) < 0.01);
    assert_true(sl_entropy(S("abcdefghijklmnop")) > 3.99);
    assert_int_equal(sl_validator_parse("crc32-base62"), SL_VAL_CRC32_BASE62);
    assert_int_equal(sl_validator_parse("md5"), -1);
    assert_string_equal(sl_validator_name(SL_VAL_BIP39), "bip39");
}

static void decoders(void **state)
{
    (void)state;
    unsigned char out[64];
    char o[64];
    assert_int_equal(sl_decode_base64(S("aGVsbG8gd29ybGQ="), out, sizeof out), 11);
    assert_memory_equal(out, "hello world", 11);
    assert_int_equal(sl_decode_base64(S("aGVsbG8gd29ybGQ"), out, sizeof out), 11);
    assert_int_equal(sl_decode_base64(S("-_-_"), out, sizeof out), 3);
    assert_int_equal(out[0], 0xFB);
    assert_int_equal(sl_decode_base64(S("aGV*"), out, sizeof out), SIZE_MAX);
    assert_int_equal(sl_decode_base64(S("aGVsb"), out, sizeof out), SIZE_MAX);
    assert_int_equal(sl_decode_base64(S("aGVsbG8gd29ybGQ="), out, 4), SIZE_MAX);
    assert_int_equal(sl_decode_base32(S("NBSWY3DP"), out, sizeof out), 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(sl_decode_hex(S("68656c6c6f"), out, sizeof out), 5);
    assert_int_equal(sl_decode_hex(S("68:65:6c:6c:6f"), out, sizeof out), 5);
    assert_int_equal(sl_decode_hex(S("68 65 6C 6C 6F"), out, sizeof out), 5);
    assert_int_equal(sl_decode_hex(S("68:65-6c"), out, sizeof out), SIZE_MAX);
    assert_int_equal(sl_decode_hex(S("686"), out, sizeof out), SIZE_MAX);
    uint32_t map[64];
    size_t n = sl_decode_percent(S("a%41%zz%4"), o, map);
    assert_int_equal(n, 7);
    assert_memory_equal(o, "aA%zz%4", 7);
    assert_int_equal(map[1], 1);
    assert_int_equal(map[2], 4);
    assert_int_equal(map[n], 9);
    n = sl_decode_html(S("&lt;&#65;&#x42;&amp;&bogus;"), o, map);
    assert_memory_equal(o, "<AB&&bogus;", n);
    assert_int_equal(map[2], 9);
    n = sl_decode_escapes(S("\\u0041\\x42\\n\\ud83d\\ude00\\u{1F600}\\q"), o, map);
    assert_int_equal(n, 3 + 4 + 4 + 2);
    assert_memory_equal(o, "AB\n\xF0\x9F\x98\x80\xF0\x9F\x98\x80\\q", n);
    assert_true(sl_mostly_printable((const unsigned char *)"hello, wörld", 13));
    assert_false(sl_mostly_printable((const unsigned char *)"\x01\x02\x03\xff\xfe", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(luhn),        cmocka_unit_test(iban),
        cmocka_unit_test(bip39),       cmocka_unit_test(bip39_tail),
        cmocka_unit_test(base58check), cmocka_unit_test(crc32_base62),
        cmocka_unit_test(jwt),         cmocka_unit_test(ssn),
        cmocka_unit_test(pem),         cmocka_unit_test(entropy_and_names),
        cmocka_unit_test(decoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Credential injection decisions: a pure function from a parsed request to
 * "refuse (rule, secret, dimension)" or "forward these rewritten headers,
 * path and query", plus the streaming filter for request bodies.
 *
 * For each secret the request is in scope when the host matches one of its
 * host globs, and the method, path and identity lists are empty or match.
 * Then, in order:
 *   1. the real value of any secret anywhere in the request (host, method,
 *      header names and values, Basic credentials, path and query raw and
 *      percent-decoded) refuses it: secret.real-value-from-sandbox;
 *   2. a secret's placeholder anywhere in a request out of its scope refuses
 *      it: secret.out-of-scope, with the failing dimension (host, method,
 *      path, identity), high severity: it is how exfiltration looks;
 *   3. in scope, the placeholder is replaced by the value in the locations
 *      replace_in enables (header values, including inside
 *      `Authorization: Basic`, the path and query percent-encoded), and the
 *      inject header is added when the request lacks it;
 *   4. a `require` secret in scope that was neither replaced nor injected
 *      refuses the request (secret.required-missing), unless body
 *      replacement may still satisfy it (checked at the end of the body).
 * When any secret is used, Accept-Encoding is set to identity so an echo in
 * the response can be redacted. */
#ifndef SLUICE_SECRETS_INJECT_H
#define SLUICE_SECRETS_INJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/view.h"
#include "http/h1.h"
#include "secrets/match.h"
#include "secrets/store.h"

/* A request as the proxy parsed it: views into its buffers. */
typedef struct sl_secret_req {
    sl_view_t identity;            /* identity name; empty if none */
    sl_view_t method;              /* request method token */
    sl_view_t host;                /* normalised host (sl_host_normalize) */
    sl_view_t path;                /* path as sent, without the query ("/" if empty) */
    sl_view_t query;               /* query without '?' */
    bool has_query;                /* a '?' was present */
    const sl_h1_header_t *headers; /* header fields to be forwarded */
    size_t n_headers;
} sl_secret_req_t;

/* One secret used by a request, for the audit event. */
typedef struct sl_secret_use {
    const char *name; /* the secret's name (store-owned; never the value) */
    char where[80];   /* "header:Authorization", "query", "path" or "body" */
    bool injected;    /* added from the inject template (not a replaced placeholder) */
} sl_secret_use_t;

/* Refusal rule ids (static strings, compare by pointer or strcmp). */
extern const char SL_SECRET_RULE_OUT_OF_SCOPE[];     /* "secret.out-of-scope" */
extern const char SL_SECRET_RULE_REAL_VALUE[];       /* "secret.real-value-from-sandbox" */
extern const char SL_SECRET_RULE_REQUIRED_MISSING[]; /* "secret.required-missing" */
extern const char SL_SECRET_RULE_BODY_ENCODED[];     /* "secret.body-encoded" */

/* The outcome of sl_secret_decide. Owns its buffers (wiped on free, as they
 * hold real values): free with sl_secret_decision_free. */
typedef struct sl_secret_decision {
    bool refused;          /* the request must not leave; answer with rule + reason */
    const char *rule;      /* SL_SECRET_RULE_* when refused, else NULL */
    const char *secret;    /* name of the secret concerned, or NULL */
    const char *dimension; /* out-of-scope: "host", "method", "path" or "identity" */
    bool high_severity;    /* an exfiltration signature (out-of-scope placeholder, real value) */
    char reason[256];      /* human text for the refusal body and audit; never a value */

    bool changed;            /* headers, path or query differ from the request's */
    sl_h1_header_t *headers; /* headers to forward (views into the request or into this
                                decision); valid until sl_secret_decision_free */
    size_t n_headers;        /* their number */
    sl_view_t path;          /* path to forward */
    sl_view_t query;         /* query to forward (without '?') */
    bool has_query;          /* forward a '?' */
    sl_secret_use_t *uses;   /* secrets used, for the audit event */
    size_t n_uses;           /* their number */
    bool body_filter;        /* run sl_secret_body over the request body (always true when
                                the store holds secrets and the request is not refused) */
    bool body_replace;       /* the body filter may change the body's length: recompute
                                Content-Length (buffered) or send it chunked, and refuse
                                a Content-Encoding other than identity */

    /* private */
    sl_smatch_act_t *_body_act; /* one action per store pattern, for the body filter */
    bool *_pending;             /* n: require still unmet, body may satisfy it */
    char **_owned;              /* buffers this decision owns */
    size_t *_owned_n;           /* their sizes, for wiping */
    size_t _n_owned;
    sl_secret_store_t *_store; /* referenced */
} sl_secret_decision_t;

/* Decide on a request. Always fills `d` (free it with
 * sl_secret_decision_free, refused or not). `s` may be NULL or empty: then
 * nothing changes and body_filter is false. Pure: no I/O, no logging. */
void sl_secret_decide(sl_secret_store_t *s, const sl_secret_req_t *req, sl_secret_decision_t *d);

/* Wipe and free what the decision owns. */
void sl_secret_decision_free(sl_secret_decision_t *d);

/* May a body with this Content-Encoding value (empty view if absent) be
 * forwarded under this decision? False when body replacement is on and the
 * encoding is anything but identity: the proxy then refuses with
 * SL_SECRET_RULE_BODY_ENCODED (a compressed body is never skipped). */
bool sl_secret_body_encoding_ok(const sl_secret_decision_t *d, sl_view_t content_encoding);

/* The request-body filter: replaces placeholders where body replacement is
 * in scope, refuses real values and out-of-scope placeholders, and finishes
 * pending `require` checks. */
typedef struct sl_secret_body {
    sl_smatch_stream_t st;         /* engine */
    const sl_secret_decision_t *d; /* borrowed: must outlive the filter */
    bool refused;                  /* a refusal was found; see rule/secret/reason */
    const char *rule;              /* SL_SECRET_RULE_* */
    const char *secret;            /* secret name */
    char reason[256];              /* never a value */
} sl_secret_body_t;

/* Start a filter for decision `d` (which must have body_filter set). */
void sl_secret_body_init(sl_secret_body_t *b, const sl_secret_decision_t *d);
/* Feed decoded body bytes (chunked framing removed); output is appended to
 * `out`. Returns 0, or -1 when the request must be refused: discard `out`,
 * abort the upstream request (never complete it) and answer with b->rule. */
int sl_secret_body_feed(sl_secret_body_t *b, const void *p, size_t n, sl_buf_t *out);
/* End of body: flush and run pending checks. Same return contract. */
int sl_secret_body_finish(sl_secret_body_t *b, sl_buf_t *out);
/* Body bytes out minus bytes in so far (after finish: new length = old +
 * delta, for a fully buffered body's Content-Length). */
long long sl_secret_body_delta(const sl_secret_body_t *b);
/* Names of the secrets whose placeholder the body filter replaced, for the
 * audit event (location "body"). Writes up to `cap` names; returns how many
 * there are. */
size_t sl_secret_body_used(const sl_secret_body_t *b, const char **names, size_t cap);
/* Wipe and free. */
void sl_secret_body_free(sl_secret_body_t *b);

#endif

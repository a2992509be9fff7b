/* The split-secret history in the proxy (src/inspect/history.h): which
 * values of a request are fragments, in which channel, for which identity.
 * Internal to src/proxy/. */
#ifndef SLUICE_PROXY_HISTORY_H
#define SLUICE_PROXY_HISTORY_H

#include <stddef.h>

#include "http/url.h"
#include "inspect/inspect.h"
#include "proxy/proxy-t.h"

/* Check the request head of `c` (URL `u`, forwarded header fields `fwd`)
 * against its identity's recent requests and record its fragments: query
 * values by parameter name, path segments by position on the host, the
 * first host label by the rest of the host, header values by header name
 * (standard headers that carry no data are skipped). Appends the findings
 * that a fragment completes to `out` and writes where it was seen, for the
 * refusal reason, to `where` ("query parameter (split across 4 requests)";
 * never a value). Returns the number of findings appended (0 when the
 * history is disabled or inspection is off), -1 with an "inspection-limit"
 * finding when it could not check. Call after the per-request scans
 * passed, once per request head. */
int sl_history_request(sl_client_t *c, const sl_url_t *u, const sl_h1_header_t *fwd, size_t n_fwd,
                       sl_findings_t *out, char *where, size_t where_cap);

/* The same for a small request body held whole (`p`, `n`: all of it, as the
 * agent sent it): its fields (JSON string members and form values by name)
 * or, when it is neither, the whole body by host. Same returns. Call once,
 * at the end of the body, before any of it is released upstream. */
int sl_history_body(sl_client_t *c, const char *p, size_t n, sl_findings_t *out, char *where,
                    size_t where_cap);

#endif

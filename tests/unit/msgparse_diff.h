/* The differential check of msgparse.c against jansson + the old normalize
 * (normalize_ref.c), shared by test_msgparse and fuzz_msgparse. */
#ifndef ARGUS_MSGPARSE_DIFF_H
#define ARGUS_MSGPARSE_DIFF_H

#include <stddef.h>

/* Parses text both ways, as an ingest body (a batch) and as one message,
 * with the default limits and with small ones. Returns 0 when they agree on
 * JSON or not, the number of messages, accept or refuse per message with the
 * same reason, and every accepted field (doubles bit for bit; payload and
 * metrics text reading back as the same JSON); otherwise 1 with the
 * disagreement described in why. The one intended difference: a raw NUL
 * byte that jansson skips (right after a number or a literal) is refused. */
int msgparse_diff(const char *text, size_t len, char *why, size_t why_len);

#endif

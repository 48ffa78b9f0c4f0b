/* Private to src/http. */
#ifndef ARGUS_HTTP_INTERNAL_H
#define ARGUS_HTTP_INTERNAL_H

#include "http.h"

struct MHD_Response;

/* Resolves url under web_dir (no ".." escapes; "/" and unknown paths
 * without an extension fall back to index.html for the single-page UI) and
 * sets res->file_path, or answers 404. */
void http__static_serve(const char *web_dir, const char *url,
                        struct http_res *res);
/* Opens the file for sending; NULL if it vanished. *size gets its size. */
struct MHD_Response *http__static_response(const char *path, size_t *size);

#endif

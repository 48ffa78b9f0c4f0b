#include "http_internal.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".map", "application/json"},
};

static const char *mime_for(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
            if (strcmp(dot, mime_types[i].ext) == 0)
                return mime_types[i].type;
    return "application/octet-stream";
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void http__static_serve(const char *web_dir, const char *url,
                        struct http_res *res)
{
    /* Refuse any path segment that could climb out of web_dir. */
    if (strstr(url, "/..") || strstr(url, "\\") || url[0] != '/') {
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no file at %s", url);
        return;
    }
    char path[4096];
    int n = snprintf(path, sizeof path, "%s%s", web_dir, url);
    if (n < 0 || (size_t)n >= sizeof path) {
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "path too long");
        return;
    }
    if (url[strlen(url) - 1] == '/')
        strncat(path, "index.html", sizeof path - strlen(path) - 1);
    if (!is_file(path)) {
        const char *last = strrchr(url, '/');
        if (strchr(last, '.')) { /* a missing asset stays a 404 */
            http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no file at %s", url);
            return;
        }
        snprintf(path, sizeof path, "%s/index.html", web_dir);
        if (!is_file(path)) {
            http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no file at %s", url);
            return;
        }
    }
    res->status = 200;
    res->content_type = NULL;
    res->file_path = strdup(path);
    http_res_header(res, "Content-Type", mime_for(path));
    http_res_header(res, "Cache-Control",
                    strstr(path, "/assets/") ? "public, max-age=31536000, immutable"
                                             : "no-cache");
}

struct MHD_Response *http__static_response(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    struct MHD_Response *r =
        MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!r) {
        close(fd);
        return NULL;
    }
    *size = (size_t)st.st_size;
    return r;
}

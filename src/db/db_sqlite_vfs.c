/*
 * A VFS over SQLite's default one that gathers the writes to a WAL file.
 *
 * A commit appends its pages to the WAL as frames, and SQLite writes each
 * frame with two pwrite calls (a 24-byte header, then the page): a points
 * flush that touches a thousand series' leaf pages made two thousand
 * system calls, ~17 % of the embedded writer's time at single-message
 * rates. Here the writes that continue one another are kept in a buffer
 * (BUF_CAP) and reach the file in one pwrite per ~30 frames.
 *
 * What another connection may read of the WAL is only ever what the
 * wal-index header says is committed, and a writer publishes that header
 * in two halves with a memory barrier between them (xShmBarrier of the
 * database file). A reader takes the header only when both halves agree,
 * so flushing at every barrier puts a commit's frames in the file before
 * any reader (or the checkpointer) can look for them. In practice a
 * commit's frames are flushed earlier, as its last frame is written (see
 * v_write), where a failed write still fails the commit; the barrier is
 * the guarantee. The handle's own
 * reads, size, truncation, sync and close flush first, and a write that
 * does not continue the buffer flushes it first, so the file as seen
 * through the handle is always the file plus the buffer. Frames still in
 * the buffer at a crash are frames no commit had published.
 *
 * Buffers and the list of WAL files are under one mutex: a barrier (every
 * read transaction's start takes one) flushes the buffers of the WAL
 * files of its database, whichever connection wrote them.
 */
#include "db_internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* SQLite's unix VFS writes at most 128 KiB - 1 in one call (it masks the
 * length with 0x1ffff), so a buffer stays below: 29 frames of 4 KiB. */
#define BUF_CAP (120u << 10)
#define WAL_FRAME_HEADER 24

enum kind { K_OTHER, K_MAIN, K_WAL };

struct vfile {
    sqlite3_file base; /* first: SQLite sees this */
    sqlite3_file *real;
    enum kind kind;
    char *db_path; /* K_MAIN: its path; K_WAL: its database's */
    /* K_WAL: the buffered bytes stand for [off, off + len) of the file. */
    unsigned char *buf;
    size_t len;
    sqlite3_int64 off;
    bool commit_next; /* the next write is a commit frame's page */
    struct vfile *next; /* the list of WAL files */
};

static sqlite3_vfs vfs;
static sqlite3_vfs *real_vfs;
static sqlite3_io_methods methods;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct vfile *wals;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;

/* Under mu. */
static int flush_locked(struct vfile *f)
{
    if (!f->len)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
    f->len = 0;
    return rc;
}

static int flush(struct vfile *f)
{
    if (f->kind != K_WAL)
        return SQLITE_OK;
    pthread_mutex_lock(&mu);
    int rc = flush_locked(f);
    pthread_mutex_unlock(&mu);
    return rc;
}

static int v_close(sqlite3_file *file)
{
    struct vfile *f = (struct vfile *)file;
    int rc = SQLITE_OK;
    if (f->kind == K_WAL) {
        pthread_mutex_lock(&mu);
        rc = flush_locked(f);
        for (struct vfile **p = &wals; *p; p = &(*p)->next) {
            if (*p == f) {
                *p = f->next;
                break;
            }
        }
        pthread_mutex_unlock(&mu);
    }
    int rc2 = f->real->pMethods->xClose(f->real);
    free(f->buf);
    free(f->db_path);
    return rc != SQLITE_OK ? rc : rc2;
}

static int v_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
    struct vfile *f = (struct vfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc
                           : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int v_write(sqlite3_file *file, const void *data, int amt,
                   sqlite3_int64 off)
{
    struct vfile *f = (struct vfile *)file;
    if (f->kind != K_WAL || amt <= 0 || (size_t)amt > BUF_CAP) {
        int rc = flush(f);
        return rc != SQLITE_OK
                   ? rc
                   : f->real->pMethods->xWrite(f->real, data, amt, off);
    }
    pthread_mutex_lock(&mu);
    int rc = SQLITE_OK;
    if (f->len &&
        (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)amt > BUF_CAP))
        rc = flush_locked(f);
    if (rc == SQLITE_OK) {
        if (!f->len)
            f->off = off;
        memcpy(f->buf + f->len, data, (size_t)amt);
        f->len += (size_t)amt;
        /* A frame is a 24-byte header, then its page; a commit's last
         * frame has the database size (non-zero) in header bytes 4-7.
         * Its page ends the commit's frames: they go to the file now,
         * where a failure (a full disk) still fails the commit. */
        const unsigned char *h = data;
        if (f->commit_next) {
            f->commit_next = false;
            rc = flush_locked(f);
        } else if (amt == WAL_FRAME_HEADER && (h[4] | h[5] | h[6] | h[7])) {
            f->commit_next = true;
        }
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

static int v_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct vfile *f = (struct vfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int v_sync(sqlite3_file *file, int flags)
{
    struct vfile *f = (struct vfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int v_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct vfile *f = (struct vfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int v_lock(sqlite3_file *file, int level)
{
    struct vfile *f = (struct vfile *)file;
    return f->real->pMethods->xLock(f->real, level);
}

static int v_unlock(sqlite3_file *file, int level)
{
    struct vfile *f = (struct vfile *)file;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int v_check_reserved(sqlite3_file *file, int *out)
{
    struct vfile *f = (struct vfile *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int v_file_control(sqlite3_file *file, int op, void *arg)
{
    struct vfile *f = (struct vfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc
                           : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int v_sector_size(sqlite3_file *file)
{
    struct vfile *f = (struct vfile *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int v_device_characteristics(sqlite3_file *file)
{
    struct vfile *f = (struct vfile *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int v_shm_map(sqlite3_file *file, int page, int size, int extend,
                     void volatile **out)
{
    struct vfile *f = (struct vfile *)file;
    if (f->real->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMMAP;
    return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}

static int v_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    struct vfile *f = (struct vfile *)file;
    if (f->real->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMLOCK;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

/* Frames reach the file before a wal-index header can name them (see the
 * top). Normally a commit's frames were flushed at its last frame, where
 * a failure fails the commit, and there is nothing left here. xShmBarrier
 * cannot return an error, so a failure here is logged. */
static void v_shm_barrier(sqlite3_file *file)
{
    struct vfile *f = (struct vfile *)file;
    if (f->kind == K_MAIN && f->db_path) {
        pthread_mutex_lock(&mu);
        for (struct vfile *w = wals; w; w = w->next) {
            int rc = w->len && strcmp(w->db_path, f->db_path) == 0
                         ? flush_locked(w)
                         : SQLITE_OK;
            if (rc != SQLITE_OK)
                core_log_error("db", "msg=\"WAL frames could not be written "
                                     "before their commit was published\" "
                                     "path=%s code=%d",
                               w->db_path, rc);
        }
        pthread_mutex_unlock(&mu);
    }
    if (f->real->pMethods->iVersion >= 2)
        f->real->pMethods->xShmBarrier(f->real);
}

static int v_shm_unmap(sqlite3_file *file, int del)
{
    struct vfile *f = (struct vfile *)file;
    if (f->real->pMethods->iVersion < 2)
        return SQLITE_OK;
    return f->real->pMethods->xShmUnmap(f->real, del);
}

static int v_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
    struct vfile *f = (struct vfile *)file;
    if (f->real->pMethods->iVersion < 3) {
        *out = NULL; /* no mapping: SQLite reads instead */
        return SQLITE_OK;
    }
    return f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int v_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    struct vfile *f = (struct vfile *)file;
    if (f->real->pMethods->iVersion < 3)
        return SQLITE_OK;
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static int v_open(sqlite3_vfs *self, sqlite3_filename name, sqlite3_file *file,
                  int flags, int *out_flags)
{
    (void)self;
    struct vfile *f = (struct vfile *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    f->kind = flags & SQLITE_OPEN_WAL      ? K_WAL
              : flags & SQLITE_OPEN_MAIN_DB ? K_MAIN
                                            : K_OTHER;
    if (f->kind != K_OTHER && name) {
        size_t n = strlen(name);
        if (f->kind == K_WAL && n > 4 && strcmp(name + n - 4, "-wal") == 0)
            n -= 4;
        f->db_path = strndup(name, n);
        if (f->kind == K_WAL)
            f->buf = malloc(BUF_CAP);
        if (!f->db_path || (f->kind == K_WAL && !f->buf)) {
            free(f->db_path);
            free(f->buf);
            return SQLITE_NOMEM;
        }
    }
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK || !f->real->pMethods) {
        free(f->db_path);
        free(f->buf);
        f->base.pMethods = NULL;
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    f->base.pMethods = &methods;
    if (f->kind == K_WAL) {
        pthread_mutex_lock(&mu);
        f->next = wals;
        wals = f;
        pthread_mutex_unlock(&mu);
    }
    return SQLITE_OK;
}

/* The rest of the VFS is the default one's. */
static int v_delete(sqlite3_vfs *s, const char *name, int sync_dir)
{
    (void)s;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *s, const char *name, int flags, int *out)
{
    (void)s;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *s, const char *name, int n, char *out)
{
    (void)s;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *v_dl_open(sqlite3_vfs *s, const char *name)
{
    (void)s;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void v_dl_error(sqlite3_vfs *s, int n, char *out)
{
    (void)s;
    real_vfs->xDlError(real_vfs, n, out);
}

static void (*v_dl_sym(sqlite3_vfs *s, void *h, const char *sym))(void)
{
    (void)s;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void v_dl_close(sqlite3_vfs *s, void *h)
{
    (void)s;
    real_vfs->xDlClose(real_vfs, h);
}

static int v_randomness(sqlite3_vfs *s, int n, char *out)
{
    (void)s;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *s, int us)
{
    (void)s;
    return real_vfs->xSleep(real_vfs, us);
}

static int v_current_time(sqlite3_vfs *s, double *out)
{
    (void)s;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_get_last_error(sqlite3_vfs *s, int n, char *out)
{
    (void)s;
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out)
                                   : 0;
}

static int v_current_time_int64(sqlite3_vfs *s, sqlite3_int64 *out)
{
    (void)s;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void register_once(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    /* The buffer relies on the default VFS's shared-memory wal-index
     * (version 3 methods) and on xCurrentTimeInt64 (version 2). */
    if (!real_vfs || real_vfs->iVersion < 2)
        return;
    methods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = v_close,
        .xRead = v_read,
        .xWrite = v_write,
        .xTruncate = v_truncate,
        .xSync = v_sync,
        .xFileSize = v_file_size,
        .xLock = v_lock,
        .xUnlock = v_unlock,
        .xCheckReservedLock = v_check_reserved,
        .xFileControl = v_file_control,
        .xSectorSize = v_sector_size,
        .xDeviceCharacteristics = v_device_characteristics,
        .xShmMap = v_shm_map,
        .xShmLock = v_shm_lock,
        .xShmBarrier = v_shm_barrier,
        .xShmUnmap = v_shm_unmap,
        .xFetch = v_fetch,
        .xUnfetch = v_unfetch,
    };
    vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct vfile) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = DB_SQLITE_VFS,
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full_pathname,
        .xDlOpen = v_dl_open,
        .xDlError = v_dl_error,
        .xDlSym = v_dl_sym,
        .xDlClose = v_dl_close,
        .xRandomness = v_randomness,
        .xSleep = v_sleep,
        .xCurrentTime = v_current_time,
        .xGetLastError = v_get_last_error,
        .xCurrentTimeInt64 = v_current_time_int64,
    };
    registered = sqlite3_vfs_register(&vfs, 0);
}

const char *db__sqlite_vfs(void)
{
    pthread_once(&once, register_once);
    return registered == SQLITE_OK ? DB_SQLITE_VFS : NULL;
}

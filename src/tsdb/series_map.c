/*
 * The series map: open addressing with linear probing from a series key to
 * its id, used for the shared series cache and for the series a connection
 * created in its open transaction.
 */
#include "tsdb_internal.h"

#include <stdlib.h>
#include <string.h>

static char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

/* FNV-1a, 64 bits: keys are short and come from our own ids. */
uint64_t tsdb__hash(const char *key)
{
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

void tsdb__map_init(struct tsdb__map *m)
{
    memset(m, 0, sizeof *m);
}

void tsdb__map_clear(struct tsdb__map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
            free(m->slots[i].key);
        m->slots[i].key = NULL;
    }
    m->used = 0;
    m->live = 0;
}

void tsdb__map_fini(struct tsdb__map *m)
{
    tsdb__map_clear(m);
    free(m->slots);
    tsdb__map_init(m);
}

/* The slot holding key, or NULL. */
static struct tsdb__map_slot *find(const struct tsdb__map *m, const char *key,
                                   uint64_t h)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct tsdb__map_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0)
            return s;
    }
}

bool tsdb__map_get(const struct tsdb__map *m, const char *key, uint64_t h,
                   int64_t *id)
{
    struct tsdb__map_slot *s = find(m, key, h);
    if (s)
        *id = s->id;
    return s != NULL;
}

/* Rebuilds into cap slots (a power of two above live), dropping
 * tombstones. */
static int grow(struct tsdb__map *m, size_t cap)
{
    struct tsdb__map_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return CORE_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        struct tsdb__map_slot *s = &m->slots[i];
        if (!s->key || s->key == TOMBSTONE)
            continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->used = m->live;
    return CORE_OK;
}

int tsdb__map_put(struct tsdb__map *m, const char *key, uint64_t h,
                  int64_t id)
{
    struct tsdb__map_slot *s = find(m, key, h);
    if (s) {
        s->id = id;
        return CORE_OK;
    }
    /* Keep the load (tombstones included) under 3/4. */
    if ((m->used + 1) * 4 >= m->cap * 3) {
        size_t cap = m->cap ? m->cap : 64;
        while ((m->live + 1) * 2 >= cap)
            cap *= 2;
        int rc = grow(m, cap);
        if (rc != CORE_OK)
            return rc;
    }
    char *copy = strdup(key);
    if (!copy)
        return CORE_ENOMEM;
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->used++;
    m->slots[i] = (struct tsdb__map_slot){.key = copy, .hash = h, .id = id};
    m->live++;
    return CORE_OK;
}

void tsdb__map_del(struct tsdb__map *m, const char *key, uint64_t h)
{
    struct tsdb__map_slot *s = find(m, key, h);
    if (!s)
        return;
    free(s->key);
    s->key = TOMBSTONE;
    m->live--;
}

int tsdb__map_merge(struct tsdb__map *dst, const struct tsdb__map *src)
{
    for (size_t i = 0; i < src->cap; i++) {
        const struct tsdb__map_slot *s = &src->slots[i];
        if (!s->key || s->key == TOMBSTONE)
            continue;
        int rc = tsdb__map_put(dst, s->key, s->hash, s->id);
        if (rc != CORE_OK)
            return rc;
    }
    return CORE_OK;
}

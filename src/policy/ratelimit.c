#include "policy/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RL_SLOTS 65536 /* open addressing; stale buckets are swept when full */

typedef struct bucket {
    uint64_t hash; /* 0 = empty slot */
    char key[160];
    double tokens;
    uint64_t last_ms;
    uint64_t window_ms;
} bucket_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bucket_t *slots;
static size_t used;

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ? h : 1;
}

/* Drop buckets that have been full for a whole window: they carry no state. */
static void sweep(uint64_t now_ms)
{
    bucket_t *old = slots;
    slots = calloc(RL_SLOTS, sizeof *slots);
    used = 0;
    if (slots == NULL) {
        slots = old;
        return;
    }
    for (size_t i = 0; i < RL_SLOTS; i++) {
        bucket_t *b = &old[i];
        if (b->hash == 0 || now_ms - b->last_ms > b->window_ms)
            continue;
        size_t j = b->hash % RL_SLOTS;
        while (slots[j].hash)
            j = (j + 1) % RL_SLOTS;
        slots[j] = *b;
        used++;
    }
    free(old);
}

bool sl_ratelimit_take(const char *key, uint64_t limit, uint64_t window_ms, uint64_t now_ms)
{
    if (limit == 0)
        return true;
    if (window_ms == 0)
        window_ms = 60000;
    uint64_t h = hash_key(key);
    bool ok = true;
    pthread_mutex_lock(&lock);
    if (slots == NULL && (slots = calloc(RL_SLOTS, sizeof *slots)) == NULL) {
        pthread_mutex_unlock(&lock);
        return false; /* fail closed */
    }
    if (used > RL_SLOTS * 3 / 4)
        sweep(now_ms);
    size_t i = h % RL_SLOTS;
    while (slots[i].hash && (slots[i].hash != h || strncmp(slots[i].key, key, sizeof slots[i].key)))
        i = (i + 1) % RL_SLOTS;
    bucket_t *b = &slots[i];
    if (b->hash == 0) {
        if (used >= RL_SLOTS - 1) {
            pthread_mutex_unlock(&lock);
            return false;
        }
        b->hash = h;
        strncpy(b->key, key, sizeof b->key - 1);
        b->tokens = (double)limit;
        b->last_ms = now_ms;
        used++;
    }
    b->window_ms = window_ms;
    double refill = (double)(now_ms - b->last_ms) * (double)limit / (double)window_ms;
    b->tokens = b->tokens + refill > (double)limit ? (double)limit : b->tokens + refill;
    b->last_ms = now_ms;
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        ok = false;
    pthread_mutex_unlock(&lock);
    return ok;
}

void sl_ratelimit_reset(void)
{
    pthread_mutex_lock(&lock);
    free(slots);
    slots = NULL;
    used = 0;
    pthread_mutex_unlock(&lock);
}

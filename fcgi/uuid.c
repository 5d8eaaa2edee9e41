/* uuid.c - version 7 UUIDs: time-ordered ids the worker makes itself */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "rfc3339.h"
#include "uuid.h"

/* Random bits come from a pool refilled 256 ids at a time (one getrandom()
 * call per id cost a system call per row); it is first filled on the first
 * call, in the worker, after the fork, so no two workers share bits. */
void uuid_v7(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    static unsigned char pool[4096];
    static size_t used = sizeof(pool);
    unsigned char b[16];
    uint64_t ms = (uint64_t)(rfc3339_now() / 1000);

    if (used == sizeof(pool)) {
        if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool))
            abort(); /* the kernel's random source failed: nothing sane to do */
        used = 0;
    }
    memcpy(b, pool + used, sizeof(b));
    used += sizeof(b);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *out++ = '-';
        *out++ = hex[b[i] >> 4];
        *out++ = hex[b[i] & 15];
    }
    *out = '\0';
}

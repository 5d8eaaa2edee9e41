/* streams.c - the `streams` group: ingest's routes for NDJSON uploads, and how slow a body may be
 */
#include "groups.h"

/* --body-grace and --body-min-rate (request_body_pace). */
static long streams_body_grace = 10;    /* seconds */
static long streams_body_min_rate = 32; /* KiB per second; 0 = no limit */

const group_option_t streams_options[] = {
    {.name = "body-grace",
     .env = "FLEETDASH_BODY_GRACE",
     .help = "a request body may take S seconds to start (default 10)",
     .min = 0,
     .max = 3600,
     .value = &streams_body_grace},
    {.name = "body-min-rate",
     .env = "FLEETDASH_BODY_MIN_RATE",
     .help = "then KIB KiB for every second past it, else 408 (default 32; 0 = no limit)",
     .min = 0,
     .max = 1048576,
     .value = &streams_body_min_rate},
    {.name = NULL},
};

void streams_start(void)
{
    request_body_pace(streams_body_grace, streams_body_min_rate * 1024);
}

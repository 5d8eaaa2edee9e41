/* ingest.h - the ingest group's handlers, shared by its sources: ingest.c
 * (executions, the group's route table; its helpers share
 * ingest_internal.h) and registry.c (agents, versions, heartbeats,
 * evaluations, problems, deployments, proposals, experiments). */
#ifndef FLEETDASH_INGEST_H
#define FLEETDASH_INGEST_H

#include "groups.h"

/* ingest.c */
int executions_create(request_t *req, response_t *res, problem_t *p);

#endif

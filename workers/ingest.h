/* ingest.h - the ingest group's handlers, shared by its sources: ingest.c
 * (executions, the group's route table; its helpers share
 * ingest_internal.h) and registry.c (agents, versions, heartbeats,
 * evaluations, problems, deployments, proposals, experiments). */
#ifndef FLEETDASH_INGEST_H
#define FLEETDASH_INGEST_H

#include "groups.h"

/* registry.c */
int agents_create(request_t *req, response_t *res, problem_t *p);
int agents_list(request_t *req, response_t *res, problem_t *p);
int agents_get(request_t *req, response_t *res, problem_t *p);
int agents_patch(request_t *req, response_t *res, problem_t *p);
int agents_heartbeat(request_t *req, response_t *res, problem_t *p);
int versions_create(request_t *req, response_t *res, problem_t *p);
int versions_activate(request_t *req, response_t *res, problem_t *p);
int evaluations_create(request_t *req, response_t *res, problem_t *p);
int problems_create(request_t *req, response_t *res, problem_t *p);
int problems_patch(request_t *req, response_t *res, problem_t *p);
int deployments_create(request_t *req, response_t *res, problem_t *p);
int deployments_patch(request_t *req, response_t *res, problem_t *p);
int proposals_create(request_t *req, response_t *res, problem_t *p);
int proposals_patch(request_t *req, response_t *res, problem_t *p);
int experiments_create(request_t *req, response_t *res, problem_t *p);
int experiments_patch(request_t *req, response_t *res, problem_t *p);

/* ingest.c */
int executions_create(request_t *req, response_t *res, problem_t *p);

#endif

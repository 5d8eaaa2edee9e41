/* write.h - a route that is one statement answering one row: ids of the path, a checked body,
 * the row's "body" column as the answer */
#ifndef FLEETDASH_WRITE_H
#define FLEETDASH_WRITE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "db.h"
#include "problem.h"
#include "request.h"
#include "response.h"
#include "validate.h"

/* Everything a request body must satisfy.
 * fields: members, types, bounds, enumerations (validate_object)
 * uuids:  string members that must hold a UUID; NULL, or NULL-terminated
 * extra:  checks the tables cannot express; NULL = none */
typedef struct body_rules {
    const field_rule_t *fields;
    const char *const *uuids;
    void (*extra)(const json_t *body, problem_t *p);
} body_rules_t;

/* One route served by write_serve. The statement's parameters are the ids
 * of the path (checked to be UUIDs first), then the checked body as JSON
 * text.
 * stmt:     one call of a SQL function; answers the object as its column
 *           "body" (JSON text, answered as it is)
 * nouns:    what each id of the path names, for 404 details; NULL = no ids
 * body:     what the body must satisfy; NULL = the request has no body
 * status:   200 or 201; 0 = 201 when the row's column "created" is true,
 *           else 200
 * location: the Location header of a 201, made from the row's columns;
 *           NULL = none */
typedef struct write_route {
    const db_statement_t *stmt;
    const char *const *nouns;
    const body_rules_t *body;
    int status;
    const char *(*location)(arena_t *arena, const PGresult *rows);
} write_route_t;

/* An object with versions (If-Match on its writes, fcgi/etag.h), answered
 * from a (body, id, version) row by write_answer_versioned.
 * noun: what it is, for the 404 "No NOUN ID." (ID: the first id of the path)
 * base: the path a 201's Location is BASE/ID of (the row's "id")
 * weak: its ETag is weak, W/"3": the body holds more than the versioned
 *       object (state that changes while the version stays) */
typedef struct write_versioned {
    const char *noun;
    const char *base;
    bool weak;
} write_versioned_t;

/* Checks body against rules, recording every bad field in p. Returns 0 when
 * all is well, -1 otherwise. */
int write_check_body(const json_t *body, const body_rules_t *rules, problem_t *p);

/* The {id} captures of the route, which must be UUIDs: anything else names
 * nothing that exists, so it is a 404 ("No NOUN ID."). Returns 0 or -1. */
int write_captured_ids(const request_t *req, const char *const *nouns, problem_t *p);

/* The request's JSON body, checked against rules, as JSON text in the
 * arena; NULL with p filled (400, 413, 415, 422, ...) when it cannot be read
 * or breaks a rule. */
const char *write_body_text(request_t *req, const body_rules_t *rules, problem_t *p);

/* True if the request carries a body (a Content-Length above zero). */
bool write_has_body(const request_t *req);

/* Runs stmt with params and answers the "body" of its first row with
 * status (0: 201 when the row's "created" is true, else 200); w (may be
 * NULL) makes the Location of a 201. Without a row, or with a NULL body,
 * the answer is a 404 saying missing, or with missing NULL a server error
 * (a write function raises instead: no row from one is a mistake). Returns
 * 0, or -1 with p filled. */
int write_answer_row(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                     const char *const *params, int status, const write_route_t *w,
                     const char *missing);

/* Answers the first row of rows, a (body, id, version) row of the object v
 * says, with status, the ETag of its version and for a 201 its Location. No
 * row, or a NULL body, is the 404 "No NOUN ID.". Returns 0, or -1 with p
 * filled. rows stays the caller's. */
int write_answer_versioned(request_t *req, response_t *res, problem_t *p, const PGresult *rows,
                           int status, const write_versioned_t *v);

/* Runs stmt with params and answers its row with write_answer_versioned.
 * Returns 0, or -1 with p filled. */
int write_run_versioned(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                        const char *const *params, int status, const write_versioned_t *v);

/* Runs stmt with params, whose rows say nothing (a delete: the statement
 * raises for what is wrong), and answers 204. Returns 0, or -1 with p
 * filled. */
int write_run_no_content(response_t *res, problem_t *p, const db_statement_t *stmt,
                         const char *const *params);

/* The handler of a route whose .arg is a write_route_t: ids, body, one
 * statement, one row. A GET is a read: when it finds no row (or a NULL
 * body) the answer is the 404 "No NOUN ID." of the first id. */
int write_serve(request_t *req, response_t *res, problem_t *p);

#endif

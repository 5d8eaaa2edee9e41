/* dashboards.h - what the files of the dashboards group share: the input
 * checks (dashboards_input.c) and the widget handlers (widgets.c) */
#ifndef FLEETDASH_DASHBOARDS_H
#define FLEETDASH_DASHBOARDS_H

#include <jansson.h>
#include <stdbool.h>

#include "../fcgi/router.h"

#define DASHBOARDS_BASE      "/api/v1/dashboards"
#define DASHBOARDS_OWNER_MAX 255 /* characters of an owner, in a body and in ?owner= */

/* ---------------------------------------------------------------- input */

/* Checks a DashboardInput (or, with patch, a dashboard patch) and its
 * widgets, recording every bad field in p. Returns 0, or -1 when p holds a
 * problem. */
int dashboards_input_check(const json_t *body, bool patch, problem_t *p);

/* Checks a WidgetInput (or, with patch, a widget patch) under prefix ("" or
 * "widgets[2]"), recording every bad field in p. */
void dashboards_input_widget(const json_t *widget, const char *prefix, bool patch, problem_t *p);

/* Checks one position (all four members, inside the 12-column grid) under
 * prefix. */
void dashboards_input_position(const json_t *position, const char *prefix, problem_t *p);

/* Checks the members of a widget config that the data of a widget of type
 * is made from; any other member is the client's own. A NULL type (a patch
 * that keeps the type) checks the members every type shares. */
void dashboards_input_config(const json_t *config, const char *type, const char *prefix,
                             problem_t *p);

/* The {id} captures of the route must be UUIDs: anything else names nothing
 * that exists. Returns 0, or -1 with a 404 in p. */
int dashboards_input_ids(const request_t *req, problem_t *p);

/* ---------------------------------------------------------------- widgets */

/* The widget routes (widgets.c): POST .../{id}/widgets, and GET, PUT,
 * PATCH, DELETE .../{id}/widgets/{widget_id}. Handlers as router.h says. */
int widgets_create(request_t *req, response_t *res, problem_t *p);
int widgets_get(request_t *req, response_t *res, problem_t *p);
int widgets_update(request_t *req, response_t *res, problem_t *p);
int widgets_delete(request_t *req, response_t *res, problem_t *p);

#endif

/* json_in.h - a fast reader of the JSON objects most NDJSON lines are, with
 * jansson's reader behind it for everything else
 *
 * jansson reads a character at a time through a stream: 4.3 us of an
 * execution's line of ~260 bytes, half of what the ingest worker spent on
 * a row. json_in_object() reads the common shape in one pass and builds the
 * same values with jansson's constructors; anything outside that shape
 * returns NULL, and the caller reads the text with json_loadb() as before,
 * which also words every error. */
#ifndef FLEETDASH_JSON_IN_H
#define FLEETDASH_JSON_IN_H

#include <jansson.h>
#include <stddef.h>

/* The object s[0..len) holds, as json_loadb(s, len, JSON_REJECT_DUPLICATES)
 * reads it; or NULL when s is not an object of this shape: ASCII strings
 * without escapes, numbers (integers of at most 18 digits), true, false,
 * null and objects, nested at most 8 deep; JSON whitespace around. NULL
 * says nothing about s: it may be valid JSON all the same. */
json_t *json_in_object(const char *s, size_t len);

/* The commas, colons, '[' and '{' of s[0..len) outside strings: about two
 * per value, and one per array or object however deep it is nested. What
 * jansson takes to read a text grows with its values (~100 bytes each) and
 * its string bytes; it does not survive a failed allocation, so a text is
 * measured before it is read. */
size_t json_in_separators(const char *s, size_t len);

#endif

/* pgcopy.c - PostgreSQL's binary COPY format (see pgcopy.h) */
#include <string.h>

#include "pgcopy.h"
#include "validate.h"

#define POSTGRES_EPOCH_MICROS 946684800000000LL /* 2000-01-01 after 1970-01-01 */
#define NUMERIC_POS           0x0000
#define NUMERIC_NEG           0x4000

static size_t put16(char *out, uint16_t v)
{
    out[0] = (char)(v >> 8);
    out[1] = (char)v;
    return 2;
}

static size_t put32(char *out, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        out[i] = (char)(v >> (24 - 8 * i));
    return 4;
}

static size_t put64(char *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (char)(v >> (56 - 8 * i));
    return 8;
}

size_t pgcopy_header(char *out)
{
    memcpy(out, "PGCOPY\n\377\r\n\0", 11);
    put32(out + 11, 0); /* flags: no OIDs */
    put32(out + 15, 0); /* no header extension */
    return PGCOPY_HEADER_LEN;
}

size_t pgcopy_trailer(char *out)
{
    return put16(out, 0xffff);
}

size_t pgcopy_row(char *out, int fields)
{
    return put16(out, (uint16_t)fields);
}

size_t pgcopy_null(char *out)
{
    return put32(out, 0xffffffffu);
}

size_t pgcopy_bool(char *out, bool v)
{
    put32(out, 1);
    out[4] = v ? 1 : 0;
    return 5;
}

size_t pgcopy_int4(char *out, int32_t v)
{
    put32(out, 4);
    return 4 + put32(out + 4, (uint32_t)v);
}

size_t pgcopy_int8(char *out, int64_t v)
{
    put32(out, 8);
    return 4 + put64(out + 4, (uint64_t)v);
}

size_t pgcopy_float8(char *out, double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    put32(out, 8);
    return 4 + put64(out + 4, bits);
}

size_t pgcopy_timestamptz(char *out, int64_t micros)
{
    return pgcopy_int8(out, micros - POSTGRES_EPOCH_MICROS);
}

size_t pgcopy_uuid(char *out, const char *s)
{
    char *o = out + 4;

    for (int i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i++] != '-')
                return 0;
            continue;
        }
        int hi = validate_hex(s[i]), lo = hi < 0 ? -1 : validate_hex(s[i + 1]);
        if (lo < 0)
            return 0;
        *o++ = (char)(hi << 4 | lo);
        i += 2;
    }
    if (s[36] != '\0')
        return 0;
    put32(out, 16);
    return PGCOPY_UUID_LEN;
}

size_t pgcopy_text(char *out, const char *s, size_t len)
{
    put32(out, (uint32_t)len);
    memcpy(out + 4, s, len);
    return 4 + len;
}

size_t pgcopy_text_or_null(char *out, const char *s)
{
    return s != NULL ? pgcopy_text(out, s, strlen(s)) : pgcopy_null(out);
}

size_t pgcopy_jsonb(char *out, const char *s, size_t len)
{
    put32(out, (uint32_t)len + 1);
    out[4] = 1; /* jsonb's binary format version */
    memcpy(out + 5, s, len);
    return 5 + len;
}

/* floor(a / 4) for any sign */
static int floor4(int a)
{
    return a >= 0 ? a / 4 : -((3 - a) / 4);
}

size_t pgcopy_numeric(char *out, const char *s)
{
    char digits[40];
    int ndigits = 0, point = -1, exponent = 0, sign = NUMERIC_POS;
    const char *c = s;

    if (strlen(s) > 40)
        return 0;
    if (*c == '-' || *c == '+')
        sign = *c++ == '-' ? NUMERIC_NEG : NUMERIC_POS;
    for (; (*c >= '0' && *c <= '9') || (*c == '.' && point < 0); c++) {
        if (*c == '.')
            point = ndigits;
        else
            digits[ndigits++] = (char)(*c - '0');
    }
    if (ndigits == 0)
        return 0;
    if (point < 0)
        point = ndigits;
    if (*c == 'e' || *c == 'E') {
        int esign = 1, edigits = 0;
        c++;
        if (*c == '-' || *c == '+')
            esign = *c++ == '-' ? -1 : 1;
        for (; *c >= '0' && *c <= '9' && exponent <= 1000; c++, edigits++)
            exponent = exponent * 10 + (*c - '0');
        if (edigits == 0 || exponent > 1000)
            return 0;
        exponent *= esign;
    }
    if (*c != '\0')
        return 0;
    /* as the server's numeric input: the scale is the digits after the
     * point, less the exponent */
    int dscale = ndigits - point - exponent;
    point += exponent; /* digit i stands for 10^(point - 1 - i) */
    int first = 0, last = ndigits;
    while (first < last && digits[first] == 0)
        first++;
    while (last > first && digits[last - 1] == 0)
        last--;
    int16_t groups[12] = {0};
    int weight = 0, ngroups = 0;
    if (first < last) {
        weight = floor4(point - 1 - first);
        ngroups = weight - floor4(point - 1 - (last - 1)) + 1;
        for (int i = first; i < last; i++) {
            int power = point - 1 - i, g = floor4(power);
            static const int16_t scale[4] = {1, 10, 100, 1000};
            groups[weight - g] = (int16_t)(groups[weight - g] + digits[i] * scale[power - 4 * g]);
        }
    } else {
        sign = NUMERIC_POS; /* -0 is 0 */
    }
    size_t n = 4;
    n += put16(out + n, (uint16_t)ngroups);
    n += put16(out + n, (uint16_t)(int16_t)weight);
    n += put16(out + n, (uint16_t)sign);
    n += put16(out + n, (uint16_t)(dscale > 0 ? dscale : 0));
    for (int i = 0; i < ngroups; i++)
        n += put16(out + n, (uint16_t)groups[i]);
    put32(out, (uint32_t)(n - 4));
    return n;
}

/* rfc3339.c - RFC 3339 timestamps in and out, as microseconds since the epoch */
#include "rfc3339.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

/* Reads exactly n digits at *s into *out and advances *s. */
static int digits(const char **s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return -1;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int rfc3339_parse(const char *s, int64_t *micros)
{
    int year, month, day, hour, minute, second, off_h = 0, off_m = 0, sign = 0;
    int64_t fraction = 0;

    if (s == NULL || digits(&s, 4, &year) || *s++ != '-' || digits(&s, 2, &month) || *s++ != '-' ||
        digits(&s, 2, &day) || (*s != 'T' && *s != 't' && *s != ' '))
        return -1;
    s++;
    if (digits(&s, 2, &hour) || *s++ != ':' || digits(&s, 2, &minute) || *s++ != ':' ||
        digits(&s, 2, &second))
        return -1;
    if (*s == '.') {
        int n = 0;
        for (s++; isdigit((unsigned char)*s); s++, n++)
            if (n < 6)
                fraction = fraction * 10 + (*s - '0');
        if (n == 0 || n > 9)
            return -1;
        for (; n < 6; n++)
            fraction *= 10;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '+' ? 1 : -1;
        if (digits(&s, 2, &off_h) || *s++ != ':' || digits(&s, 2, &off_m) || off_h > 23 ||
            off_m > 59)
            return -1;
    } else {
        return -1;
    }
    if (*s != '\0' || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 60 || year < 1)
        return -1;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = minute,
                    .tm_sec = second == 60 ? 59 : second};
    int64_t seconds = (int64_t)timegm(&tm) - (int64_t)sign * (off_h * 3600 + off_m * 60);
    *micros = seconds * 1000000 + fraction;
    return 0;
}

void rfc3339_format(int64_t micros, char *buf)
{
    time_t seconds = (time_t)(micros / 1000000);
    int64_t fraction = micros % 1000000;
    struct tm tm;

    if (fraction < 0) {
        fraction += 1000000;
        seconds -= 1;
    }
    char text[64];

    gmtime_r(&seconds, &tm);
    if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)fraction);
        snprintf(buf, 32, "%.31s", text);
        return;
    }
    /* by hand: ingest formats two per execution, and snprintf showed in profiles */
    const unsigned parts[7] = {(unsigned)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
                               (unsigned)tm.tm_mday,        (unsigned)tm.tm_hour,
                               (unsigned)tm.tm_min,         (unsigned)tm.tm_sec,
                               (unsigned)fraction};
    static const int widths[7] = {4, 2, 2, 2, 2, 2, 6};
    static const char after[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    char *p = buf;
    for (int i = 0; i < 7; i++) {
        unsigned v = parts[i];
        for (int d = widths[i] - 1; d >= 0; d--, v /= 10)
            p[d] = (char)('0' + v % 10);
        p += widths[i];
        *p++ = after[i];
    }
    *p = '\0';
}

int64_t rfc3339_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

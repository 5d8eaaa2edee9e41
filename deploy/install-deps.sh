#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages fleetdash needs to build,
# test and run; does nothing (no apt-get at all) when they are all present.
#
# Run as root (CI and the dev sessions are root). Installing postgresql-15
# also creates and may start Debian's default cluster "15/main" on port
# 5432; fleetdash never uses it (deploy/stack.sh runs its own cluster).

set -euo pipefail

readonly PACKAGES=(
    build-essential     # cc, make
    pkg-config
    nginx-light         # front end: FastCGI, limits, gzip, headers
    libnginx-mod-nchan  # the live streams' subscribers (nginx.conf)
    libfcgi-dev         # FastCGI runtime of the workers
    libfcgi-bin         # cgi-fcgi, to poke a group socket by hand
    libjansson-dev
    libpq-dev
    libcurl4-openssl-dev  # the sender's webhooks (workers/sender.c)
    libssl-dev          # their HMAC-SHA256 signatures
    libcmocka-dev       # unit tests
    clang-format        # make fmt-check
    postgresql-15
    postgresql-15-tdigest
    wrk                 # benchmarks
    curl
    procps              # ps, pkill for humans; pgrep in tests
    python3-pytest      # end-to-end tests, run with /usr/bin/python3
    python3-psycopg2
    python3-jsonschema
    python3-yaml
    python3-requests
    python3-websocket   # WebSocket client of tests/e2e/test_streams.py
    prometheus          # promtool and a real scrape in tests/e2e/test_metrics.py
)
# Installed without their recommended packages (prometheus would pull in an
# exporter and a web UI nobody here uses).
readonly WITHOUT_RECOMMENDS=(prometheus)

# missing_packages - print the packages of PACKAGES not installed.
missing_packages() {
    local package status
    for package in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
        [[ $status == installed ]] || printf '%s\n' "$package"
    done
}

main() {
    local missing
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        echo "install-deps: all ${#PACKAGES[@]} packages present"
        return 0
    fi
    if ((EUID != 0)); then
        echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    local plain=() bare=() package
    for package in "${missing[@]}"; do
        if [[ " ${WITHOUT_RECOMMENDS[*]} " == *" $package "* ]]; then
            bare+=("$package")
        else
            plain+=("$package")
        fi
    done
    ((${#plain[@]} == 0)) || apt-get install -y -q "${plain[@]}"
    ((${#bare[@]} == 0)) || apt-get install -y -q --no-install-recommends "${bare[@]}"
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} != 0)); then
        echo "install-deps: still missing after apt-get: ${missing[*]}" >&2
        exit 1
    fi
}

main "$@"

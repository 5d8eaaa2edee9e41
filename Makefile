# fleetdash - build, run, test and benchmark. `make help` lists the targets.

CC      ?= cc
CFLAGS  ?= -O2 -g
INCS    := -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
WARN    := $(INCS) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
LIBS    := -lfcgi -ljansson -lpq -lcurl -lcrypto
# The sanitizer build leaves jansson on malloc (fcgi/worker.c), so that a
# reference counted wrong shows as a leak or a use after free.
ASAN    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
           -DFLEETDASH_JSON_MALLOC

RUNTIME := $(wildcard fcgi/*.c) $(wildcard workers/*.c)
LIBSRC  := $(filter-out workers/main.c,$(RUNTIME))
HEADERS := $(wildcard fcgi/*.h) $(wildcard workers/*.h)
UNITS   := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))

# Dev and test stacks: each its own folder under var/ and its own ports.
RUN_VAR   := var/run
TEST_VAR  := var/test
PORT      ?= 8080
PGPORT    ?= 5433
TEST_PORT ?= 18080
TEST_PGPORT ?= 54330
# The sanitizer suite runs beside the normal one, on a stack of its own.
TEST_ASAN_VAR    := var/test-asan
TEST_ASAN_PORT   ?= 18090
TEST_ASAN_PGPORT ?= 54340

# make demo: demo_fleet() of sql/dev/demo_fleet_*.sql on the make run stack.
DEMO_EXECUTIONS ?= 200000
DEMO_AGENTS     ?= 50
DEMO_DAYS       ?= 30

.PHONY: all asan deps run demo test unit e2e e2e-asan bench soak fmt fmt-check clean help

all: bin/fleetdashd

help:
	@echo "make            build bin/fleetdashd (-Wall -Wextra -Werror)"
	@echo "make run        install what is missing, build, serve on http://127.0.0.1:$(PORT)"
	@echo "                (an empty database gets the demo fleet; FLEETDASH_DEMO=0 make run starts empty)"
	@echo "make demo       add a demo fleet to the running make run stack (DEMO_EXECUTIONS=$(DEMO_EXECUTIONS)"
	@echo "                DEMO_AGENTS=$(DEMO_AGENTS) DEMO_DAYS=$(DEMO_DAYS))"
	@echo "make test       the same on its own ports and var/, then every test (also under ASan+UBSan)"
	@echo "make bench      benchmarks, as ratios to baselines measured in the same run"
	@echo "make soak       faults under load (workers killed, slow clients, big bodies), each figure vs its goal"
	@echo "make fmt        format the C sources; make fmt-check only checks"

bin/fleetdashd: $(RUNTIME) $(HEADERS)
	@mkdir -p bin
	$(CC) $(CFLAGS) $(WARN) -o $@ $(RUNTIME) $(LIBS)

build/asan/fleetdashd: $(RUNTIME) $(HEADERS)
	@mkdir -p build/asan
	$(CC) $(ASAN) $(WARN) -o $@ $(RUNTIME) $(LIBS)

asan: build/asan/fleetdashd

build/unit/%: tests/unit/%.c $(LIBSRC) $(HEADERS)
	@mkdir -p build/unit
	$(CC) $(ASAN) $(WARN) -o $@ $< $(LIBSRC) $(LIBS) -lcmocka

deps:
	@deploy/install-deps.sh

run: deps all
	FLEETDASHD=bin/fleetdashd PORT=$(PORT) PGPORT=$(PGPORT) deploy/stack.sh run $(RUN_VAR)

# Adds (never replaces) agents and their history; VACUUM so that the first
# reads do not have to set hint bits on every new row.
demo:
	@test -f $(RUN_VAR)/stack.env || { echo "make demo: no stack in $(RUN_VAR); start one with make run" >&2; exit 1; }
	@{ printf 'SET client_min_messages = warning;\nBEGIN;\n'; cat sql/dev/demo_fleet_*.sql; printf 'COMMIT;\nRESET client_min_messages;\n'; \
	  printf '%s\n' "SELECT * FROM demo_fleet(:'agents'::integer, :'executions'::bigint, :'days'::integer);" \
		'VACUUM (ANALYZE) executions;'; } | \
	(. $(abspath $(RUN_VAR)/stack.env) && psql -X -q -v ON_ERROR_STOP=1 -v agents='$(DEMO_AGENTS)' \
		-v executions='$(DEMO_EXECUTIONS)' -v days='$(DEMO_DAYS)')

# Formatting, unit tests (built with the sanitizers), then the end-to-end
# suite against the normal build and against the sanitizer build, side by
# side (each on its own stack and ports; each suite's output is printed when
# it ends). The test stacks start from empty folders every time.
test: deps all asan
	@deploy/stack.sh down $(TEST_VAR) >/dev/null 2>&1 || true
	@deploy/stack.sh down $(TEST_ASAN_VAR) >/dev/null 2>&1 || true
	rm -rf $(TEST_VAR) $(TEST_ASAN_VAR)
	@$(MAKE) --no-print-directory fmt-check
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory -j2 --output-sync=target e2e e2e-asan
	@echo "make test: all suites passed"

unit: $(addprefix build/unit/,$(UNITS))
	@set -e; for t in $^; do echo "== $$t"; $$t; done

e2e: all
	FLEETDASHD=bin/fleetdashd PORT=$(TEST_PORT) PGPORT=$(TEST_PGPORT) tests/run-e2e.sh $(TEST_VAR)

# jansson is built without frame pointers, so a leak report's stack may stop
# inside it. To have it name our caller, run
#   make e2e-asan ASAN_EXTRA=:fast_unwind_on_malloc=0
# (slow unwinding makes malloc-heavy tests about 10 times slower: a 100,000-line
# ingest went from 1.5 s to 17 s and timed out in CI, so it is not the default).
ASAN_EXTRA ?=
e2e-asan: asan
	rm -rf $(TEST_ASAN_VAR)/asan && mkdir -p $(TEST_ASAN_VAR)/asan
	FLEETDASHD=build/asan/fleetdashd PORT=$(TEST_ASAN_PORT) PGPORT=$(TEST_ASAN_PGPORT) \
	ASAN_LOG_DIR=$(CURDIR)/$(TEST_ASAN_VAR)/asan \
	ASAN_OPTIONS=log_path=$(CURDIR)/$(TEST_ASAN_VAR)/asan/asan:detect_leaks=1$(ASAN_EXTRA) \
	UBSAN_OPTIONS=log_path=$(CURDIR)/$(TEST_ASAN_VAR)/asan/ubsan:print_stacktrace=1 \
	tests/run-e2e.sh $(TEST_ASAN_VAR)

bench: deps all
	tests/bench/run.sh var/bench
	tests/bench/ingest.sh var/bench-ingest
	tests/bench/aggregates.sh var/bench-aggregates
	tests/bench/alert_rules.sh var/bench-alert-rules
	tests/bench/alerts.sh var/bench-alerts
	tests/bench/state.sh var/bench-state
	tests/bench/explorer.sh var/bench-explorer
	tests/bench/activity.sh var/bench-activity
	tests/bench/streams.sh var/bench-streams

soak: deps all
	tests/soak/run.sh var/soak

fmt:
	clang-format -i $(RUNTIME) $(HEADERS) $(wildcard tests/unit/*.c)

fmt-check:
	clang-format --dry-run --Werror $(RUNTIME) $(HEADERS) $(wildcard tests/unit/*.c)

clean:
	rm -rf bin build

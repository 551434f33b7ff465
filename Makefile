# Spark Edge. `make run` starts the edge in front of the origin with demo
# data; `make test` installs what the tests need and runs them all.
GO       ?= go
BIN      := bin/spark
FUZZTIME ?= 5s
PKGS     := ./...

.PHONY: build build-deps run test test-deps test-deploy vet fuzz-seeds pitr-drill reload-drill bench bench-go bench-edge bench-images bench-origin bench-system bench-peers bench-realtime bench-mobile loadtest chaos clean

build: build-deps
	$(GO) build -trimpath -o $(BIN) ./cmd/spark

# libvips for the image proxy (cgo); installs it when missing.
build-deps:
	scripts/build-deps.sh

# The origin (embedded store, demo users) on 127.0.0.1:8081 and the edge on
# :8080 in front of it. Ctrl-C stops both.
run: build
	scripts/run.sh

# Everything the tests need (PostGIS, running PostgreSQL and Redis), then
# vet, the race-enabled test suite, and a short fuzzing run of each target.
test: test-deps vet
	url=$$(scripts/test-origin-deps.sh | tail -n1 | cut -d= -f2-) && \
		SPARK_TEST_DATABASE_URL="$$url" $(GO) test -race -count=1 -timeout 20m $(PKGS) && \
		cd deploy && SPARK_TEST_DATABASE_URL="$$url" $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz-seeds

# deploy/ alone (its own Go module): the dashboard and alert rules against a
# running edge and origin, promtool check/test rules, systemd-analyze verify
# of the units, the compose file's consistency.
test-deploy: test-deps
	cd deploy && $(GO) vet ./...
	url=$$(scripts/test-origin-deps.sh | tail -n1 | cut -d= -f2-) && \
		cd deploy && SPARK_TEST_DATABASE_URL="$$url" $(GO) test -race -count=1 -timeout 20m ./...

test-deps: build-deps
	scripts/test-deps.sh

vet:
	$(GO) vet $(PKGS)
	cd deploy && $(GO) vet ./...

# Short coverage-guided runs of every fuzz target (the seed corpora also run
# inside `go test`). FUZZTIME=1m make fuzz-seeds for a longer look.
fuzz-seeds:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz-seeds.sh

# Benchmarks: hot paths with -benchmem; the edge hit run against Caddy's
# respond; image variants against libvips' thumbnail path; the origin alone
# on PostGIS with 1,000,000 users against pgbench running its SQL; then the
# whole system (edge in front of that origin, spark loadtest at rising rates
# until P95 crosses 200 ms: the knee). Each prints its figures with the
# reference measured in the same run.
bench: bench-go bench-edge bench-images bench-origin bench-system bench-realtime bench-mobile

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./caddymodule/... ./tiered/... ./geocache/...
	$(GO) test -run '^$$' -bench 'SuggestionsJSON' -benchmem -count 1 ./origin/

# The origin alone (issue 3's figures): suggestions, location, history and
# send at 32 and 4 clients (wrk), pgbench on the same SQL as the reference.
# Seeds BENCH_DB (spark_loadtest_bench, shared with bench-system) once.
bench-origin: build
	scripts/bench-origin.sh

bench-edge: build
	scripts/bench-edge.sh

# Realtime chat (issue 12's figures): idle memory per connection, typing
# fan-out through Redis and messages stored in PostGIS and delivered over two
# edges with drops resumed, each beside the reference hub (loadtest/refhub).
# CONNS (10000), TYPING_RATE (5000), MSG_RATE (2000), DROP (0.1), STEP (30s).
bench-realtime: build
	scripts/bench-realtime.sh

# App open on 3G (issue 17's figures): 5 calls (4 cached) as one /api/batch
# against five calls and the slowest call alone, over a delaying proxy
# (BENCH_RTT 150ms, BENCH_MBPS 1.6, BENCH_RUNS 40): P95, bytes, round trips.
bench-mobile: build
	scripts/bench-mobile.sh

# Whole-system knee search (BENCH_USERS, BENCH_RATES, BENCH_STEP, BENCH_BISECT).
bench-system: build
	scripts/bench-system.sh

# The same hit-heavy workload against Varnish, nginx proxy_cache and the Spark
# edge in front of one origin (installs varnish and nginx-light).
bench-peers: build
	scripts/bench-peers.sh

# Fault drills (issue 16, chaos/): the origin, Redis and PostgreSQL killed,
# a full photo disk, 1,000 slow clients and an edge killed, one at a time
# under a steady load on a real stack (two edges, Redis, the origin on a
# PostgreSQL cluster of the drill's own), long version (the short one runs
# in make test); then the cross-user leak hunt at LEAKHUNT_REQUESTS. Prints
# the drill table; fails when a promise breaks. Needs root (tmpfs, runuser).
LEAKHUNT_REQUESTS ?= 200000
chaos: build test-deps
	SPARK_BIN=$(CURDIR)/$(BIN) SPARK_CHAOS_LONG=1 $(GO) test -count=1 -v -timeout 30m -run '^TestChaos$$' ./chaos/
	SPARK_BIN=$(CURDIR)/$(BIN) SPARK_LEAKHUNT_REQUESTS=$(LEAKHUNT_REQUESTS) $(GO) test -count=1 -v -timeout 90m -run '^TestLeakHunt$$' ./origin/

# spark loadtest against make run's stack: make loadtest LOADTEST_FLAGS="--rate 2000"
loadtest: build
	bin/spark loadtest $(LOADTEST_FLAGS)

# Image variants per size and format against libvips' own thumbnail path.
bench-images: build-deps
	scripts/bench-images.sh

clean:
	rm -rf bin .bench

# Point-in-time recovery drill (deploy/RUNBOOK.md): base backup, rows before
# and after a timestamp, restore to it, check. make test runs it too
# (deploy/pitr_test.go). PITR_PORT, PITR_RESTORE_PORT, PITR_ROWS.
pitr-drill:
	deploy/pitr-drill.sh

# spark reload under wrk, RELOADS times (10): failed requests and origin
# fetches (L1 lost) against the same run without reloads.
reload-drill: build
	scripts/reload-drill.sh

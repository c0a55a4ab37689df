# Top-level entry points: build, test, bench, run. See README.md.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export CGO_CFLAGS := -Wno-deprecated-declarations
PY := /usr/bin/python3
BUILD := build
BIN := bin
NATIVE := $(BUILD)/native

.PHONY: all build native go test test-native test-go test-e2e bench bench-native bench-go run deps clean
.PHONY: gpu-check test-gpu-check test-docker test-rules test-monitoring

all: build

build: native go

# C side: the shim, ds-gst-engine and their tests (meson + ninja).
native:
	@[ -f $(NATIVE)/build.ninja ] || meson setup $(NATIVE) native --buildtype=debugoptimized
	ninja -C $(NATIVE)
	@mkdir -p $(BIN)
	cp -f $(NATIVE)/gst-engine/ds-gst-engine $(BIN)/ds-gst-engine

go:
	@mkdir -p $(BIN)
	go build -o $(BIN)/ds-supervisor ./go/cmd/ds-supervisor

# make test works on a fresh box: the packages first (as make run does), then the rest,
# which needs them (meson, GStreamer, Python's fastapi …).
test: deps
	$(MAKE) --no-print-directory build test-docker test-rules test-native test-go test-e2e test-gpu-check

test-native: native
	$(MAKE) -C native test BUILD=$(abspath $(NATIVE)) BIN=$(abspath $(BIN))

test-go:
	go vet ./...
	@unformatted=$$(gofmt -l go); if [ -n "$$unformatted" ]; then echo "gofmt: $$unformatted"; exit 1; fi
	DS_GST_ENGINE=$(abspath $(BIN))/ds-gst-engine go test -race -count=1 ./...

test-e2e: build
	$(PY) -m pytest -q test/e2e

# The alert rules: syntax, then their unit tests (input series → expected alerts).
test-rules:
	promtool check rules docker/prometheus/ds-analysis.rules.yml
	promtool test rules docker/prometheus/ds-analysis.rules.test.yml

# The rules and the dashboard against a real Prometheus scraping two real instances
# (test/e2e/test_monitoring.py, also part of test-e2e).
test-monitoring: test-rules build
	$(PY) -m pytest -q test/e2e/test_monitoring.py

# What the Dockerfiles may and may not do at build time (docker/tests).
test-docker:
	$(PY) -m pytest -q -p no:cacheprovider docker/tests

# The GPU acceptance check (README "First run on a GPU"). ENGINE=deepstream (inside the
# image: make -C /opt/ds-analysis gpu-check) builds nothing; ENGINE=gst runs the same
# script against bin/ds-gst-engine, ENGINE=standin against the real adapter on the
# DeepStream stand-in, SDK-only checks skipped.
ENGINE ?= deepstream
gpu-check: $(if $(filter gst standin,$(ENGINE)),build)
	PYTHON=$(PY) bash docker/gpu-check.sh $(ENGINE)

# Part of make test so the script keeps working, both output formats: a smaller soak,
# output under build/.
test-gpu-check: build
	GPU_CHECK_OUT=$(abspath $(BUILD))/gpu-check $(MAKE) --no-print-directory gpu-check ENGINE=gst
	GPU_CHECK_OUT=$(abspath $(BUILD))/gpu-check-standin $(MAKE) --no-print-directory gpu-check ENGINE=standin

bench: build bench-native bench-go

bench-native: native
	$(MAKE) -C native bench BUILD=$(abspath $(NATIVE)) BIN=$(abspath $(BIN))

# Pure-logic benchmarks (many iterations, percentiles), then the whole supervisor binary
# against the real engine (one pass prints the README's table).
bench-go: build
	go test -run '^$$' -bench . -benchtime 200x ./go/internal/analysis/ ./go/internal/protocol/ | tee $(BUILD)/bench-go.txt
	DS_SUPERVISOR=$(abspath $(BIN))/ds-supervisor DS_GST_ENGINE=$(abspath $(BIN))/ds-gst-engine \
	  go test -run '^$$' -bench Instance -benchtime 1x ./go/internal/supervisor/ | tee -a $(BUILD)/bench-go.txt

# The demo: installs what is missing, builds, starts the reference server and 3 instances.
run:
	bash test/run-demo.sh $(RUN_ARGS)

deps:
	bash .ci/deps.sh

# A supervisord config with one [program:ds-<app_id>] per instance (docker/README.md):
#   make supervisord-conf APP_IDS="a b c" CONFIG=<config> [WS_URL=…] [OUT=file]
#     [COMMAND="$$PWD/bin/ds-supervisor"] [CONF_ARGS="--inet 127.0.0.1:9001 …"]
.PHONY: supervisord-conf
supervisord-conf:
	$(PY) docker/supervisord/gen-conf.py $(if $(CONFIG),--config "$(CONFIG)") \
	  $(if $(WS_URL),--ws-url "$(WS_URL)") $(if $(OUT),--out "$(OUT)") \
	  $(if $(COMMAND),--command "$(COMMAND)") $(CONF_ARGS) $(APP_IDS)

clean:
	rm -rf $(BUILD) $(BIN)

# Two commands cover the project: `make demo` and `make test`. Each creates .venv on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(CURDIR)/data/dagster
export ADT_DATA_DIR ?= $(CURDIR)/data
export OMP_WAIT_POLICY ?= PASSIVE
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/data/mlflow.db
# the Dagster code location for `dagster asset ...` commands (`dagster dev` reads [tool.dagster])
export DAGSTER_MODULE_NAME ?= pipelines

.PHONY: demo test ui install clean benchmark transcribe

$(VENV)/.installed: pyproject.toml scripts/install.sh
	VENV=$(VENV) bash scripts/install.sh
	touch $@

install: $(VENV)/.installed

# the Dagster instance file: dagster.yaml (SQLite under DAGSTER_HOME) or DAGSTER_YAML=deploy/dagster.yaml
# (PostgreSQL at ADT_DAGSTER_PG_URL, docs/scale-out.md); copied again whenever it differs
DAGSTER_YAML ?= dagster.yaml
.PHONY: dagster-instance
dagster-instance:
	@mkdir -p $(DAGSTER_HOME)
	@cmp -s $(DAGSTER_YAML) $(DAGSTER_HOME)/dagster.yaml || cp $(DAGSTER_YAML) $(DAGSTER_HOME)/dagster.yaml

## make demo: materialize what is stale or missing, headlessly (profile ADT_PROFILE, default demo; ARGS=--force: everything)
demo: install dagster-instance
	$(PY) -m pipelines.materialize $(ARGS)

## make test: the test suite (unit tests + the end-to-end tiny-profile graph)
test: install
	$(PY) -m pytest -q

## make ui: Dagster UI and MLflow UI on 127.0.0.1 (one MLflow worker, no MLflow jobs or telemetry); Ctrl-C stops both
ui: install dagster-instance
	@echo "Dagster UI: http://127.0.0.1:3000   MLflow UI: http://127.0.0.1:5000   (Ctrl-C stops both)"
	@MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
	setsid $(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5000 --workers 1 --backend-store-uri $(MLFLOW_TRACKING_URI) & \
	trap 'kill -TERM -- -$$! 2>/dev/null' EXIT INT TERM; \
	env -u DAGSTER_MODULE_NAME $(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -m pipelines

## make ui-stop: stop what `make ui` started from this folder (from another terminal, or when it runs in the background):
## `dagster dev` (port 3000) with its webserver, daemon and code server, and the MLflow UI (port 5000) with its workers.
## TERM first, then KILL what is left after UI_STOP_WAIT seconds (a backgrounded Dagster webserver ignores TERM).
## Only processes whose working folder is this one; pids are checked again before the KILL.
UI_STOP_WAIT ?= 5
.PHONY: ui-stop
ui-stop:
	@tree() { local c; for c in $$(pgrep -P "$$1"); do echo "$$c"; tree "$$c"; done; }; \
	ours() { [ "$$(readlink /proc/$$1/cwd 2>/dev/null)" = "$(CURDIR)" ] && ! ps -o stat= -p "$$1" | grep -q '^Z'; }; \
	pids=""; \
	for p in $$(pgrep -f '^[^ ]*python[^ ]* [^ ]*bin/dagster dev -h 127\.0\.0\.1 -p 3000 ') \
	         $$(pgrep -f '^[^ ]*python[^ ]* [^ ]*bin/mlflow ui --host 127\.0\.0\.1 --port 5000 '); do \
	  ours "$$p" && pids="$$pids $$p $$(tree "$$p")"; \
	done; \
	pids=$$(echo $$pids); \
	if [ -z "$$pids" ]; then echo "ui-stop: no 'make ui' of $(CURDIR) is running"; exit 0; fi; \
	echo "ui-stop: TERM $$pids"; kill -TERM $$pids 2>/dev/null; left=$$pids; \
	for i in $$(seq $$(( $(UI_STOP_WAIT) * 10 ))); do \
	  left=""; for p in $$pids; do kill -0 "$$p" 2>/dev/null && ours "$$p" && left="$$left $$p"; done; \
	  [ -z "$$left" ] && break; sleep 0.1; \
	done; \
	if [ -n "$$left" ]; then echo "ui-stop: still running after $(UI_STOP_WAIT) s, KILL$$left"; kill -KILL $$left 2>/dev/null; fi; \
	echo "ui-stop: stopped what make ui started from $(CURDIR) (ports 3000 and 5000)"

## make transcribe IN="song.wav [more.wav ...]" OUT=out.mid (or a folder): `adt transcribe` from the venv
transcribe: install
	$(VENV)/bin/adt transcribe $(IN) -o $(OUT)

benchmark: install dagster-instance
	$(PY) benchmarks/bench_demo.py
	$(PY) benchmarks/bench_transcribe.py

clean:
	rm -rf data/*/ data/mlflow.db

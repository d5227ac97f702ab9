# beaconwatch developer tasks. `make` (or `make help`) lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test test-unit test-integration test-kafka test-e2e e2e-tools lint typecheck bench eval null-tables clean-jit jit-fresh clean
.PHONY: monitoring-tools test-monitoring
.PHONY: container-tools test-container

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv (Python >= 3.11) and install beaconwatch with dev extras

# Re-installs only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "beaconwatch needs Python >= 3.11 (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $(STAMP)

demo: install ## Run the self-contained demo (embedded broker, simulated traffic, live alerts)
	$(BIN)/beaconwatch demo

lint: install ## ruff lint and format check, the layering contracts (pyproject [tool.importlinter])
	$(BIN)/ruff check service evaluation tests bench
	$(BIN)/ruff format --check service evaluation tests bench
	$(BIN)/lint-imports --no-cache

typecheck: install ## mypy --strict on the package
	$(BIN)/mypy

test-unit: install ## Unit tests only
	$(BIN)/pytest tests/unit

test-integration: install ## Integration tests (start an embedded Kafka broker)
	$(BIN)/pytest tests/integration

# The tests that drive the @njit kernels (scoring, state, record batches); run as plain Python
# with NUMBA_DISABLE_JIT=1 so coverage sees their lines (stumpy's habit).
NOJIT_TESTS := $(addprefix tests/unit/test_,$(addsuffix .py,kernels bursts periodicity \
	record_batches window_score pair_table snapshot interval_significance detector_reference \
	detector fanout long_connections event_time host_owners flow_columns alignment \
	levels_every_cpu sparse lattice inbound_fixed_port daily sparse_beacon_rule))
# The decoders' scanners (decode/scan/ and the text parsers they call): the raw-pointer
# primitives have plain-Python twins under NUMBA_DISABLE_JIT=1 (test_raw_pointer compares them).
NOJIT_DECODE_TESTS := $(addprefix tests/unit/test_,$(addsuffix .py,decode_goflow2_json \
	decode_goflow2_pb decode_goflow2_pb_props decode_goflow2_names decode_fast_reject decode_initiator decode_auto \
	decode_ecs decode_pmacct decode_zeek decoder_contract json_tokens ip_text time_text))
NOJIT_DECODE_FILES := */decode/scan/*,*/decode/common/*_text.py,*/decode/common/initiator.py
# Its coverage data goes to the ignored .cache/, not beside the sources.

.PHONY: test-nojit
test-nojit: export COVERAGE_FILE := .cache/nojit.coverage
test-nojit: install ## The kernels' and scanners' tests with NUMBA_DISABLE_JIT=1 under coverage (fails below 90 % of the kernels, 95 % of the scanners)
	mkdir -p .cache && rm -f $(COVERAGE_FILE)
	NUMBA_DISABLE_JIT=1 $(BIN)/pytest -q -p no:cacheprovider -W ignore::RuntimeWarning \
	  --cov=beaconwatch.scoring --cov=beaconwatch.state --cov=beaconwatch.sources.record_batches \
	  --cov=beaconwatch.alerting.policy \
	  --cov=beaconwatch.decode --cov-report= $(NOJIT_TESTS) $(NOJIT_DECODE_TESTS)
	$(BIN)/coverage report --fail-under=90 \
	  --include='*/beaconwatch/scoring/*,*/beaconwatch/state/*,*/beaconwatch/sources/record_batches.py,*/beaconwatch/alerting/policy.py'
	$(BIN)/coverage report --fail-under=95 --include='$(NOJIT_DECODE_FILES)'

test: install lint typecheck ## Lint, type-check, unit and integration tests
	$(BIN)/pytest tests/unit tests/integration

.PHONY: test-deploy
test-deploy: install ## Kubernetes manifests: kubeconform (strict, local schemas) and Pod Security checks on them and their kustomize build, policy tests, the container on a read-only root
	PYTHON=$(BIN)/python tests/harness/k8s-tools.sh install
	tests/harness/k8s-tools.sh validate
	$(BIN)/pytest tests/deploy

e2e-tools: install ## Install what test-kafka and test-e2e need: softflowd, pmacct (apt), goflow2 (go), Apache Kafka, OpenSearch (Maven)
	PYTHON=$(BIN)/python tests/harness/install-e2e-tools.sh

test-kafka: install ## Integration suite plus Apache-only tests on Apache Kafka 4 (needs a JDK, Maven, Node.js)
	$(BIN)/python tests/harness/apache_kafka.py resolve
	$(BIN)/python tests/harness/oidc.py install  # the OAUTHBEARER tests' OIDC provider (npm)
	TEST_BROKER=apache-kafka $(BIN)/pytest tests/integration tests/apache_kafka

test-e2e: install ## pcap -> softflowd -> goflow2 / nfacctd -> Apache Kafka -> beaconwatch (run e2e-tools first)
	$(BIN)/pytest tests/e2e

monitoring-tools: ## Install what test-monitoring needs: prometheus, promtool and podman (apt)
	tests/harness/install-monitoring-tools.sh

test-monitoring: install ## Alerting rules (promtool), dashboard queries on a real Prometheus, podman-compose config
	$(BIN)/pytest tests/monitoring
container-tools: ## Install what test-container needs: podman, runc, mmdebstrap (Debian packages)
	tests/harness/install-container-tools.sh

test-container: install container-tools ## Build the service image (Debian base by mmdebstrap) and test it with podman
	$(BIN)/python tests/harness/container.py build
	$(BIN)/pytest tests/container -s

bench: install jit-fresh ## Run the benchmarks in bench/ (decode, core, storms, end to end, stages, restore, eviction)
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/core.py
	$(BIN)/python bench/storm.py
	$(BIN)/python bench/dead_letter.py
	$(BIN)/python bench/end_to_end.py
	$(BIN)/python bench/storm_end_to_end.py
	$(BIN)/python bench/stages.py
	$(BIN)/python bench/restore.py
	$(BIN)/python bench/workers.py
	$(BIN)/python bench/eviction.py

eval: install jit-fresh ## Rerun the evaluation: labelled benchmark + RITA v5 comparison -> docs/evaluation.md
	$(BIN)/python -m evaluation

null-tables: install ## Rebuild the shipped Poisson null quantiles after editing scoring/periodicity.py, interval_significance.py or lattice.py
	$(BIN)/python bench/build_null_tables.py

clean-jit: ## Drop numba's cached kernels (numba does not notice edits to a kernel's callees)
	find service -name '*.nbi' -delete -o -name '*.nbc' -delete

jit-fresh: ## Drop numba's cached kernels only if a source kernels read changed (tests do this themselves)
	$(BIN)/python tests/harness/jit_cache.py

clean: ## Remove the virtualenv, caches and build output
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find service tests bench -name __pycache__ -type d -prune -exec rm -rf {} +
	find service -name '*.egg-info' -type d -prune -exec rm -rf {} +

# The pipeline's stages, as make targets any CI calls (GitHub Actions: .github/workflows/ci.yml,
# Jenkins: Jenkinsfile). `make ci` runs the same graph here, independent stages in parallel.
# Included from the Makefile; docs/pipeline.md explains each stage.

CHECK_STAGES := lint types unit native schema-gate package
CLUSTER_STAGES := integration platform e2e reliability replay regression load-smoke
STAGES := $(CHECK_STAGES) $(CLUSTER_STAGES) deploy
# One stage per core: four cluster stages on two cores failed e2e and reliability (docs/pipeline.md).
CI_JOBS ?= $(shell nproc 2>/dev/null || echo 2)

STAGE := @pipelines/stage.sh
TOOLS_BIN := $(CURDIR)/.cache/tools/bin
ACTIONLINT_VERSION := v1.7.12
KUBECONFORM_VERSION := v0.8.0
ACTIONLINT := $(TOOLS_BIN)/actionlint-$(ACTIONLINT_VERSION)
KUBECONFORM := $(TOOLS_BIN)/kubeconform-$(KUBECONFORM_VERSION)
NODE_TOOLS := pipelines/tools/node_modules/.installed
K8S_VERSION := 1.33.0
K8S_SCHEMAS := -schema-location 'infra/k8s/schemas/kubernetes/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json' \
               -schema-location 'infra/k8s/schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'
DOCKERFILES := services/order/Dockerfile services/order/Dockerfile.process-manager \
               services/payment/Dockerfile services/audit/Dockerfile infra/local/Dockerfile
# image name = Dockerfile; the process manager is the order image's second entry point.
IMAGES := golive-order=services/order/Dockerfile \
          golive-order-process-manager=services/order/Dockerfile.process-manager \
          golive-payment=services/payment/Dockerfile golive-audit=services/audit/Dockerfile \
          golive-cli=infra/local/Dockerfile

# The schema gate compares the working tree with the schemas committed at this ref (CI: the
# target branch); with SCHEMA_REGISTRY_URL set it also asks that registry.
SCHEMA_GATE_REF ?= HEAD
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PREVIOUS_VERSION ?= $(shell git describe --tags --always HEAD~1 2>/dev/null || echo previous)
IMAGE_REGISTRY ?= ghcr.io/golive
DEPLOY_DIR := var/deploy/$(VERSION)

.PHONY: ci tools $(addprefix stage-,$(STAGES)) ci-cluster-up ci-cluster-down

# -- tools, pinned: Go-built binaries in .cache/tools, Node tools from package-lock.json ---------

$(ACTIONLINT):
	@command -v go >/dev/null || { echo "error: Go is needed to build actionlint $(ACTIONLINT_VERSION) (or install Go: https://go.dev/dl)" >&2; exit 1; }
	GOBIN=$(TOOLS_BIN) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	mv $(TOOLS_BIN)/actionlint $@

$(KUBECONFORM):
	@command -v go >/dev/null || { echo "error: Go is needed to build kubeconform $(KUBECONFORM_VERSION) (or install Go: https://go.dev/dl)" >&2; exit 1; }
	GOBIN=$(TOOLS_BIN) go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	mv $(TOOLS_BIN)/kubeconform $@

$(NODE_TOOLS): pipelines/tools/package-lock.json
	@command -v npm >/dev/null || { echo "error: Node.js 20+ and npm are needed for the AsyncAPI and Jenkinsfile checks" >&2; exit 1; }
	npm ci --prefix pipelines/tools --no-audit --no-fund --ignore-scripts
	@touch $@

tools: install $(ACTIONLINT) $(KUBECONFORM) $(NODE_TOOLS) ## Fetch the pipeline's pinned tools (actionlint, kubeconform, AsyncAPI parser, npm-groovy-lint)

# -- stages ------------------------------------------------------------------------------------

stage-lint: install $(ACTIONLINT) $(NODE_TOOLS) ## Stage: ruff, the import contracts, actionlint (workflows), npm-groovy-lint (Jenkinsfile)
	$(STAGE) lint "$(RUN) ruff check ." "$(RUN) ruff format --check ." "$(RUN) lint-imports --no-cache" \
	  "PATH=$(CURDIR)/.venv/bin:\$$PATH $(ACTIONLINT) -no-color" \
	  "pipelines/tools/node_modules/.bin/npm-groovy-lint --config pipelines/tools/groovylintrc.json --failon warning --noserver --output txt Jenkinsfile"

stage-types: install ## Stage: mypy --strict
	$(STAGE) types "$(RUN) mypy"

stage-unit: install ## Stage: the unit tier (no I/O)
	$(STAGE) unit "$(RUN) pytest tests/unit $(PYTEST_ARGS)"

stage-native: install ## Stage: the recorder's native crate: rustfmt, clippy (warnings fail), cargo test
	$(STAGE) native "cd $(NATIVE) && cargo fmt --check" \
	  "cd $(NATIVE) && cargo clippy --release --all-targets --quiet -- -D warnings" \
	  "cd $(NATIVE) && cargo test --release --quiet"

stage-schema-gate: install $(NODE_TOOLS) ## Stage: FULL_TRANSITIVE gate, AsyncAPI drift and validation, the flags file, Datadog as code
	$(STAGE) schema-gate "$(GOLIVE) schemas check --against-ref $(SCHEMA_GATE_REF)" \
	  "$(GOLIVE) flags check" \
	  "$(GOLIVE) datadog check" \
	  "$(GOLIVE) schemas asyncapi --check" \
	  "node pipelines/tools/validate-asyncapi.mjs docs/asyncapi.yaml"

stage-integration: install postgres-install fetch ## Stage: the integration tier (real broker, registry, both databases)
	$(STAGE) integration "$(RUN) pytest tests/integration $(PYTEST_ARGS)"

stage-platform: install postgres-install fetch ## Stage: the platform tier (the local platform itself, compose agreement)
	$(STAGE) platform "$(RUN) pytest tests/platform $(PYTEST_ARGS)"

stage-e2e: install postgres-install fetch ## Stage: the end-to-end tier (the four real service processes)
	$(STAGE) e2e "$(RUN) pytest tests/e2e $(PYTEST_ARGS)"

stage-reliability: install postgres-install fetch ## Stage: the reliability tier (faults injected into the running system)
	$(STAGE) reliability "test -d tests/reliability || { echo 'tests/reliability does not exist' >&2; exit 1; }" \
	  "$(RUN) pytest tests/reliability $(PYTEST_ARGS)"

stage-replay: install postgres-install fetch ## Stage: the recorder's tier (capture, desensitise, replay, regress on the real broker)
	$(STAGE) replay "$(RUN) pytest tests/replay $(PYTEST_ARGS)"

# golive regress on KAFKA_BOOTSTRAP_SERVERS when set, else on the test platform (ci-cluster-up).
REGRESS_ON = $(if $(KAFKA_BOOTSTRAP_SERVERS),,$(shell $(RUN) python -c 'from golive_platform.testing import suite_config; c = suite_config(); print("--bootstrap", c.bootstrap_servers, "--registry", c.registry_url)'))

stage-regression: install fetch ci-cluster-up ## Stage: the golden capture through this build's services, diffed (as make replay-regression)
	$(STAGE) regression "$(GOLIVE) regress $(GOLDEN_CAPTURE) --report var/replay-regression.json $(REGRESS_ON)"

stage-load-smoke: install fetch ci-cluster-up ## Stage: locust's customers against a system of its own, gated on load/slo.toml (its smoke profile)
	$(STAGE) load-smoke "$(RUN) python load/run_load.py --profile smoke --own-system"

stage-package: install ## Stage: wheels of every package (uv build), Dockerfiles linted (hadolint)
	$(STAGE) package "rm -rf dist && $(UV) build --all-packages --wheel --out-dir dist --quiet && ls dist" \
	  "$(RUN) hadolint $(DOCKERFILES)"

stage-deploy: install $(KUBECONFORM) ## Stage: images (if a Docker engine answers), manifests rendered and validated, blue/green rollout dry run
	$(STAGE) deploy "pipelines/build-images.sh $(VERSION) $(IMAGE_REGISTRY) $(IMAGES)" \
	  "$(GOLIVE) deploy render --version $(VERSION) --previous $(PREVIOUS_VERSION) --registry $(IMAGE_REGISTRY) --out $(DEPLOY_DIR)" \
	  "$(KUBECONFORM) -strict -summary -kubernetes-version $(K8S_VERSION) $(K8S_SCHEMAS) $(DEPLOY_DIR)" \
	  "$(GOLIVE) deploy rollout --manifests $(DEPLOY_DIR) --version $(VERSION) --previous $(PREVIOUS_VERSION) --dry-run" \
	  "rc=0; $(GOLIVE) deploy rollout --manifests $(DEPLOY_DIR) --version $(VERSION) --previous $(PREVIOUS_VERSION) --dry-run --fail-at 'payment: green ready' > $(DEPLOY_DIR)/rehearsed-rollback.log || rc=\$$?; \
	   test \$$rc -eq 1 && echo 'a failed check rolls back (rehearsed): $(DEPLOY_DIR)/rehearsed-rollback.log'"

# -- the graph ---------------------------------------------------------------------------------
# Cheap checks run at once and in parallel; the tiers that need Kafka wait for unit and the
# schema gate (fail fast), share one test platform, and run in parallel; deploy comes last.
ifdef CI_GRAPH
$(addprefix stage-,$(CLUSTER_STAGES)): stage-unit stage-schema-gate ci-cluster-up
stage-deploy: $(addprefix stage-,$(CHECK_STAGES) $(CLUSTER_STAGES))
export GOLIVE_KEEP_TEST_PLATFORM := 1
endif

ci-cluster-up: install postgres-install fetch
	@if [ -n "$${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then echo "ci: external cluster $$KAFKA_BOOTSTRAP_SERVERS"; \
	 else pipelines/stage.sh cluster-up "$(RUN) python -c 'from golive_platform.testing import suite_config; from golive_platform.platform import Platform; Platform(suite_config(), with_postgres=True).ensure_up(fresh=True)'"; fi

ci-cluster-down:
	@[ -n "$${KAFKA_BOOTSTRAP_SERVERS:-}" ] || $(RUN) python -c 'from golive_platform.testing import suite_config; from golive_platform.platform import Platform; Platform(suite_config(), with_postgres=True).down()'

ci: install tools ## The whole pipeline here, as CI runs it: stages in parallel (CI_JOBS, default one per core), each timed
	@rm -f var/ci/durations.tsv; start=$$(date +%s); status=0; \
	 $(MAKE) --no-print-directory -j$(CI_JOBS) --output-sync=target CI_GRAPH=1 $(addprefix stage-,$(STAGES)) || status=$$?; \
	 $(MAKE) --no-print-directory ci-cluster-down; \
	 echo "== make ci: $$(( $$(date +%s) - start ))s wall clock, $(CI_JOBS) jobs"; column -t -s "$$(printf '\t')" var/ci/durations.tsv; \
	 exit $$status

# The black-box recorder's stages (issue 6). Included from the Makefile:
#   include pipelines/replay.mk
# replay-regression runs the golden capture through this build's real services and fails on any
# difference. It uses KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL when set, else the local
# platform (started for the run and stopped after if it was down).

GOLDEN_CAPTURE ?= tests/replay/golden.jsonl.gz

.PHONY: replay-regression replay-golden bench-recorder

replay-regression: install fetch ## Regress this build against the golden capture (tests/replay/)
	$(GOLIVE) regress $(GOLDEN_CAPTURE) --report var/replay-regression.json

replay-golden: install fetch ## Re-record the golden capture (after an intended behaviour change)
	$(RUN) python -m golive_cli.recorder.golden $(GOLDEN_CAPTURE)

bench-recorder: install fetch ## Capture and replay throughput beside the raw consume/produce rates
	$(RUN) python load/bench_recorder.py $(ARGS)

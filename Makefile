# sentence-mtl: the two commands are `make reproduce` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Real data folder: a shared/data folder beside the checkout when it exists (CI sets it too); see data/README.md.
# Without one, the smoke profile falls back to the hand-written data/sample/.
ifneq ($(wildcard ../shared/data),)
export SENTENCE_MTL_DATA ?= $(abspath ../shared/data)
endif
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup test unit nbtest reproduce notebooks verify headline report claims docs figures data benchmark train train-baseline robustness retrieval serve clean lab \
	sync-notebooks container container-test

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: the CPU build lies on disk; an open range would pull a CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[offline-model,notebooks,serve,onnx,peers,report,dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed  ## create .venv/ and install everything

test: setup unit nbtest  ## unit tests + notebooks under nbval, smoke profile

unit: setup
	$(PY) -m pytest tests -q

nbtest: setup
	SENTENCE_MTL_PROFILE=smoke $(PY) -m pytest --nbval-lax notebooks -q -p no:cacheprovider

# `make reproduce` recomputes every run of the studies (a reproduction; a killed one resumes where
# it stopped when started again); `make notebooks` re-executes them reading back the runs the
# store in $(SENTENCE_MTL_CACHE:-.cache)/runs already holds. Both time themselves into
# results/reproduce_timing.json, which docs/results.md's run-time table is generated from.
reproduce: setup  ## run notebooks 01-05 in order recomputing every run (standard profile, in place), render README, docs/ and report.pdf
	@set -e; \
	$(PY) tools/reproduce.py --store recompute; \
	echo "==> [$$(date +%H:%M:%S)] claims, README, docs/ and report.pdf"; \
	$(PY) -m sentence_mtl.reporting.render

notebooks: setup  ## execute every notebook in place (standard profile), reusing stored runs
	$(PY) tools/reproduce.py --store reuse

verify: setup  ## recompute a stratified random sample of stored runs, compare bit for bit -> results/verify.json (~30 min)
	$(PY) tools/verify.py

# Two one-thread processes share each grid (runs claimed in .cache/headline_claims), which keeps
# both cores busier than one two-thread process; see docs/design.md on thread counts.
HEADLINE_CLAIMS := $(or $(SENTENCE_MTL_CACHE),.cache)/headline_claims
headline: setup  ## the headline grids of notebooks 03 and 04 into the run store, resumable (hours)
	@set -e; for grid in "" "--loop"; do \
		rm -rf $(HEADLINE_CLAIMS); \
		OMP_NUM_THREADS=1 $(PY) tools/headline_study.py $$grid --claims $(HEADLINE_CLAIMS) & first=$$!; \
		OMP_NUM_THREADS=1 $(PY) tools/headline_study.py $$grid --claims $(HEADLINE_CLAIMS); \
		wait $$first; \
	done

# JupyterLab for re-running cells: the project's kernel (.venv), data folder and profile.
# Extra server flags go in LAB_FLAGS (e.g. LAB_FLAGS="--no-browser --port 8890"); root needs --allow-root.
LAB_FLAGS ?=
lab: setup  ## JupyterLab on notebooks/ (profile: $$SENTENCE_MTL_PROFILE, default standard; smoke re-runs in seconds)
	SENTENCE_MTL_PROFILE=$${SENTENCE_MTL_PROFILE:-standard} $(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_FLAGS)

# Each notebook and its text twin in notebooks/src/ (jupytext.toml pairs them): carry edits from
# the newer side to the other, keeping the notebook's outputs.
sync-notebooks: setup  ## jupytext --sync every notebook with its notebooks/src/*.py twin
	$(VENV)/bin/jupytext --sync notebooks/src/*.py

report: setup  ## rebuild report/data.json and report.pdf from results/*.json and figures/*.png
	$(PY) -m sentence_mtl.reporting.report

# What is written, from what is measured: no notebook is executed.
claims: setup  ## results/claims.json: every number the README, docs/ and the report state, from results/
	$(PY) -m sentence_mtl.reporting.claims

docs: setup  ## claims, then README.md, docs/ and the notebooks' conclusions from templates/, then report.pdf
	$(PY) -m sentence_mtl.reporting.render

figures: setup  ## redraw the figures of figures/ that come from records in results/ (no run is repeated)
	$(PY) -m sentence_mtl.reporting.figures

benchmark: setup
	$(PY) benchmarks/encode_throughput.py
	$(PY) benchmarks/cache_speedup.py
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/study_speedups.py

# Timed end to end into results/train_timing.json (docs/results.md states it).
train: setup  ## train the chosen multi-task configuration -> models/multitask/, score it on the full test sets (~27 min)
	@set -e; start=$$(date +%s); \
	echo "==> [$$(date +%H:%M:%S)] training configs/multitask.json"; \
	$(VENV)/bin/sentence-mtl train --config configs/multitask.json --save-to models/multitask; \
	echo "==> [$$(date +%H:%M:%S)] scoring on the official test sets: records, sample predictions and confusions"; \
	$(PY) tools/show_predictions.py --model models/multitask --output results/train_predictions.json \
		--record results/train_multitask.json; \
	$(PY) -c "import sys, time; from sentence_mtl.io import write_json; write_json('results/train_timing.json', \
		{'make_train_seconds': time.time() - float(sys.argv[1]), 'config': 'configs/multitask.json', \
		 'finished': time.strftime('%Y-%m-%d %H:%M:%S')})" $$start
	$(PY) -m sentence_mtl.reporting.render --no-report

# The baseline recipe (configs/baseline_recipe.json), the fine-tuned baseline that `make robustness`
# scores beside the chosen one when models/baseline_recipe exists.
train-baseline: setup  ## train the baseline multi-task recipe -> models/baseline_recipe (~19 min)
	$(VENV)/bin/sentence-mtl train --config configs/baseline_recipe.json --save-to models/baseline_recipe

robustness: setup  ## the model `make train` saved, in and out of domain, against the frozen encoder, the baseline recipe and WiSE-FT (~40 min)
	$(PY) -m sentence_mtl.experiments.robustness --model models/multitask --output results/robustness.json \
		$(if $(wildcard models/baseline_recipe),--baseline models/baseline_recipe)
	$(PY) -m sentence_mtl.reporting.render --no-report

# The one recipe validation chose in notebook 05's records, one seed, with a progress bar; no notebook
# is executed (the study's recipes and seeds stay in notebook 05 and the run store). Its wall time and
# scores go to results/retrieval_timing.json; the registry promotes the run only if it is better.
retrieval: setup  ## fine-tune the retrieval recipe validation chose, one seed -> models/retrieval/best if better
	SENTENCE_MTL_PROFILE=$${SENTENCE_MTL_PROFILE:-standard} $(PY) -m sentence_mtl.experiments.retrieval_training

serve: setup  ## the HTTP service on 127.0.0.1:8000, int8 (needs `make train`; `make retrieval` upgrades /embed and /similar)
	$(VENV)/bin/sentence-mtl serve --int8

# The service as a container image (Containerfile; docs/service.md, "Container image"). CONTAINER=docker works
# too; CONTAINER_FLAGS are its global flags (e.g. --runtime runc). BASE: the base image, default the
# Containerfile's python:3.11-slim; without a registry, BASE=localhost/bookworm-python built by
# tools/container_host_setup.sh. NO_CACHE=1: a cold build. MODELS: the folder holding multitask/ and
# retrieval/best, mounted read-only. container-test is not part of `make test`: it takes minutes.
CONTAINER ?= podman
CONTAINER_FLAGS ?=
IMAGE ?= sentence-mtl
BASE ?=
NO_CACHE ?= 0
MODELS ?= $(CURDIR)/models
CONTAINER_ENV = CONTAINER="$(CONTAINER)" CONTAINER_FLAGS="$(CONTAINER_FLAGS)" IMAGE="$(IMAGE)" BASE="$(BASE)" \
	NO_CACHE="$(NO_CACHE)" MODELS="$(MODELS)"

container:  ## build the service image $(IMAGE) from Containerfile
	$(CONTAINER_ENV) tools/container_build.sh

container-test:  ## build, run with $(MODELS) mounted, check /health, /predict, a 4xx, non-root, SIGTERM; -> results/container.json
	$(CONTAINER_ENV) tools/container_test.sh

data:  ## download the published datasets (needs internet); see data/README.md
	bash data/download.sh "$${SENTENCE_MTL_DATA:-data/raw}"

clean:
	rm -rf runs .cache .pytest_cache

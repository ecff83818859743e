# sentence-mtl: the two commands are `make reproduce` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Real data folder: ../shared/data when it exists (CI sets it too); see data/README.md.
# Without one, the smoke profile falls back to the hand-written data/sample/.
ifneq ($(wildcard ../shared/data),)
export SENTENCE_MTL_DATA ?= $(abspath ../shared/data)
endif
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# The notebooks `make reproduce` runs, in order; a missing one is reported, never skipped silently.
NOTEBOOK_STEMS := 01_sentence_embeddings 02_multitask_heads 03_freezing_strategies 04_training_loop \
	05_retrieval_finetuning
NOTEBOOKS := $(sort $(wildcard notebooks/0*.ipynb) $(patsubst %,notebooks/%.ipynb,$(NOTEBOOK_STEMS)))

.PHONY: setup test unit nbtest reproduce notebooks report data benchmark train retrieval serve clean lab sync-notebooks

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: the CPU build lies on disk; an open range would pull a CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[offline-model,notebooks,serve,peers,report,dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed  ## create .venv/ and install everything

test: setup unit nbtest  ## unit tests + notebooks under nbval, smoke profile

unit: setup
	$(PY) -m pytest tests -q

nbtest: setup
	SENTENCE_MTL_PROFILE=smoke $(PY) -m pytest --nbval-lax notebooks -q -p no:cacheprovider

# Every step runs every time (all targets are phony: nothing is skipped as "up to date"); the
# embedding cache in .cache/ only saves recomputing identical vectors inside the notebooks.
reproduce:  ## set up, run notebooks 01-05 in order (standard profile, in place), update README, build report.pdf
	@set -e; start=$$(date +%s); \
	$(MAKE) --no-print-directory setup; \
	$(MAKE) --no-print-directory notebooks; \
	echo "==> [$$(date +%H:%M:%S)] updating the README results block"; \
	$(PY) tools/update_readme.py; \
	echo "==> [$$(date +%H:%M:%S)] building report/data.json and report.pdf"; \
	$(PY) -m sentence_mtl.report; \
	total=$$(( $$(date +%s) - start )); \
	echo "==> make reproduce finished in $$(( total / 60 )) min $$(( total % 60 )) s"

notebooks: setup  ## execute every notebook in place, standard profile
	@missing=0; i=0; n=$(words $(NOTEBOOKS)); \
	for nb in $(NOTEBOOKS); do \
		i=$$((i + 1)); \
		if [ ! -f "$$nb" ]; then \
			echo "==> [$$(date +%H:%M:%S)] ($$i/$$n) MISSING $$nb: not written yet, nothing to execute"; \
			missing=$$((missing + 1)); continue; \
		fi; \
		echo "==> [$$(date +%H:%M:%S)] ($$i/$$n) executing $$nb (standard profile)"; \
		start=$$(date +%s); \
		SENTENCE_MTL_PROFILE=standard $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=3600 "$$nb" || exit 1; \
		echo "    done in $$(( $$(date +%s) - start )) s"; \
	done; \
	if [ $$missing -gt 0 ]; then echo "==> WARNING: $$missing of $$n notebooks missing (see MISSING above)"; fi

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
	$(PY) -m sentence_mtl.report

benchmark: setup
	$(PY) benchmarks/encode_throughput.py
	$(PY) benchmarks/cache_speedup.py
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/study_speedups.py

train: setup  ## train the chosen multi-task configuration -> models/multitask/, score it on the full test sets
	@echo "==> [$$(date +%H:%M:%S)] training configs/multitask.json"
	$(VENV)/bin/sentence-mtl train --config configs/multitask.json --save-to models/multitask
	@echo "==> [$$(date +%H:%M:%S)] scoring on the official test sets"
	$(VENV)/bin/sentence-mtl evaluate --model models/multitask --task topic --record results/train_multitask.json
	$(VENV)/bin/sentence-mtl evaluate --model models/multitask --task sentiment --record results/train_multitask.json
	$(PY) tools/update_readme.py

retrieval: setup  ## fine-tune for retrieval (notebook 05, standard profile) -> models/retrieval/best
	SENTENCE_MTL_PROFILE=standard $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=3600 notebooks/05_retrieval_finetuning.ipynb

serve: setup  ## the HTTP service on 127.0.0.1:8000 (needs `make train` and `make retrieval` first)
	$(VENV)/bin/sentence-mtl serve

data:  ## download the published datasets (needs internet); see data/README.md
	bash data/download.sh "$${SENTENCE_MTL_DATA:-data/raw}"

clean:
	rm -rf runs .cache .pytest_cache

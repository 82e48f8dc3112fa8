# Two entry points, each doing its own set-up on a fresh machine: `make demo` and `make test`.
# The venv gets the optional ResMem extra (non-commercial licence) so the demo can score
# zero-shot and the prior tier is tested; `pip install tiermem` alone does not include it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# 2 cores here: one torch/BLAS thread pool per process avoids oversubscription.
export OMP_NUM_THREADS ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test test-fast lint docs pyav-latest install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -q -e ".[test,resmem,serve,ray,docs]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The edit loop: everything but the tests marked slow (real servers, browsers, clusters).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The documentation site (docs/, mkdocs.yml) into site/; strict: a broken link or reference fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The video paths under PyAV 19 (Python 3.12 and later get it; this venv's Python gets PyAV 18).
PYAV_LATEST := .venv-pyav-latest
PYTHON312 ?= python3.12
pyav-latest: $(STAMP)
	test -x $(PYAV_LATEST)/bin/python || ($(PYTHON312) -m venv $(PYAV_LATEST) && \
	  $(PYAV_LATEST)/bin/pip install -q "av>=19" numpy opencv-python-headless scipy)
	TIERMEM_PYAV_LATEST_PYTHON=$(PYAV_LATEST)/bin/python $(PY) -m pytest -q tests/test_pyav_latest.py

demo: $(STAMP)
	$(VENV)/bin/tiermem demo --out demo

clean:
	rm -rf $(VENV) demo site .pytest_cache

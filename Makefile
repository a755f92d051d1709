# One-command set-up: each target creates .venv if missing, installs requirements.txt, then runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo install clean-venv

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -p no:cacheprovider tests

demo: $(STAMP)
	PY=$(PY) bash scripts/demo/run.sh

clean-venv:
	rm -rf $(VENV)

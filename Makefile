# hotline — the two commands a user needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY311 ?= python3.11
VENV := .venv
RASA_VENV := .venv-rasa
PY := $(VENV)/bin/python
RASA := $(RASA_VENV)/bin/rasa
export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1
RASA_ARGS := --config nlu/config.yml --domain nlu/domain
# make test runs the suite in this many processes (tests/conftest.py keeps the stack tests on one).
TEST_WORKERS ?= 2

.PHONY: help setup run test test-unit test-stack test-dialogue validate nlu-report bench lint typecheck train world clean

help:
	@echo "make run      set up on first use, then start the bot (web chat on http://127.0.0.1:8080/)"
	@echo "make test     set up, then run every test"
	@echo "make validate / make test-dialogue   for conversation designers (nlu/)"
	@echo "make bench    chat and phone turn latency, concurrent calls, TTS and ASR speed"

# ---- set-up: two virtualenvs, pinned (design.md §3.1) ----
$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(PY) || $(PY311) -m venv $(VENV) || { echo "error: Python 3.11 is needed (set PY311=/path/to/python3.11)"; exit 1; }
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

# Never pip install into .venv-rasa without the lock: pip would upgrade SQLAlchemy/pydantic and break Rasa.
$(RASA_VENV)/.installed: requirements-rasa.lock
	@test -x $(RASA_VENV)/bin/python || { py310=$$(scripts/find-python310.sh) && $$py310 -m venv $(RASA_VENV); }
	$(RASA_VENV)/bin/python -m pip install -q -r requirements-rasa.lock
	@touch $@

setup: $(VENV)/.installed $(RASA_VENV)/.installed

train: setup
	$(PY) -m bot train

world: setup
	$(PY) -m bot world load bot/world/demo.yml

run: setup train
	$(PY) -m bot run

# ---- tests ----
test: setup lint train validate test-dialogue
	$(RASA_VENV)/bin/python -m pytest -q -p no:cacheprovider -W ignore::pytest.PytestConfigWarning --confcutdir=tests/actions tests/actions
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --durations=30 tests --ignore=tests/actions

test-unit: setup
	$(RASA_VENV)/bin/python -m pytest -q -p no:cacheprovider -W ignore::pytest.PytestConfigWarning --confcutdir=tests/actions tests/actions
	$(PY) -m pytest -q tests/unit

test-stack: setup train
	$(PY) -m pytest -q tests/integration -m stack

# Designers: data and domain are consistent, and the test stories pass.
validate: $(RASA_VENV)/.installed
	$(RASA) data validate $(RASA_ARGS) --data nlu/data
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_dialogue_consistency.py

test-dialogue: setup train
	$(PY) -m bot test-dialogue

# Cross-validation on the training data (NLU_FOLDS=0 skips it), then the trained model on the
# held-out natural test sets tests/nlu/natural_*.yml (issue 13 item 7): the README's table.
NLU_FOLDS ?= 5
nlu-report: setup train
	@mkdir -p var/nlu-report
	@if [ "$(NLU_FOLDS)" != "0" ]; then PYTHONPATH=nlu:. $(RASA) test nlu --config nlu/config.yml --nlu nlu/data/nlu --cross-validation --folds $(NLU_FOLDS) --out var/nlu-report; else rm -f var/nlu-report/intent_report.json; fi
	$(PY) -m bot nlu-report var/nlu-report/intent_report.json --folds $(NLU_FOLDS)

bench: setup train
	$(PY) -m bench.chat_latency
	$(PY) -m bench.turn_order_bench
	$(PY) -m bench.voice_bench
	$(PY) -m bench.tts_bench
	$(PY) -m bench.asr_bench
	$(PY) -m bench.switch_bench
	$(PY) -m bench.stats_bench --conversations 1000000

lint: setup
	$(PY) -m ruff check bot actions voice telnum tests bench nlu
	$(PY) -m mypy

clean:
	rm -rf var/log models/dialogue/*.tar.gz

# make run: create .venv when missing, install, run the default config (configs/digits.yaml).
# make test: the test suite. Both install first when setup.cfg or the pins changed.
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= configs/digits.yaml
PYTEST_ARGS ?=

.PHONY: run test install clean

run: $(VENV)/.installed
	$(BIN)/hybrid run $(CONFIG)

test: $(VENV)/.installed
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) runs .pytest_cache

# The two jobs a newcomer needs: `make demo` and `make test`.
# Both create .venv with the system's python3 (3.11 or newer) and install into it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PEER   := tests/peer

.PHONY: demo test lint bench clean system-deps

demo: $(VENV)/.installed
	$(BIN)/chargepoint demo

test: $(VENV)/.installed-dev system-deps $(PEER)/node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n 3 --dist loadfile

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/footprint.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

# socat makes the serial pty pairs; node runs the independent OCPP peer; systemd brings
# systemd-analyze (the unit's verify and security tests) and systemctl; mosquitto is the MQTT
# broker the MQTT tests start on a loopback port of their own (the package's service is not used);
# chromium and its driver run the dashboard's browser test (Debian's build: nothing is downloaded).
system-deps:
	@missing=""; \
	command -v socat >/dev/null || missing="$$missing socat"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	PATH="$$PATH:/usr/sbin" command -v mosquitto >/dev/null || missing="$$missing mosquitto"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update && $$SUDO apt-get install -y $$missing; \
	fi

$(PEER)/node_modules/.installed: $(PEER)/package.json $(PEER)/package-lock.json
	cd $(PEER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) $(PEER)/node_modules .pytest_cache .ruff_cache

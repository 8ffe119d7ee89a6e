# Two commands do all set-up on a fresh machine with only Python 3.11:
#   make demo   run the whole job end to end on the embedded default
#   make test   lint, type-check and run the test suite
# Both bootstrap .venv from uv.lock first (uv itself lives in .tools/, outside the locked env,
# so `uv sync` never removes the tool that runs it).

PYTHON ?= python3.11
UV_VERSION := 0.9.30
TF_EXTRA ?= cpu
UV := .tools/bin/uv
VENV := .venv
# Local runs never reach for the internet: no Beam Prism download, no Prefect telemetry.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export TF_CPP_MIN_LOG_LEVEL := 2
# MkDocs Material prints a notice about its successor on every build: not a warning of ours.
export NO_MKDOCS_2_WARNING := 1

.PHONY: demo test lint typecheck contracts generated browser docs env clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra $(TF_EXTRA) --python $(PYTHON)
	touch $@

env: $(VENV)/.synced

demo: env
	$(VENV)/bin/landcover demo

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: env
	$(VENV)/bin/mypy pipelines models flows infra

# The import contracts of pyproject.toml's [tool.importlinter] (docs/architecture.md).
contracts: env
	$(VENV)/bin/lint-imports

# infra/prefect.yaml and the Dataflow templates, rewritten from the Python definitions
# (tests/infra/test_generated.py fails while they are stale).
generated: env
	$(VENV)/bin/python -m infra.generated

# The system packages of the UI's browser test (tests/flows/test_up.py): Debian's chromium and
# its driver, via apt (root or sudo). Idempotent; .ci/run runs it before `make test`, where the
# test must run (it skips locally without them).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "chromium and chromedriver are installed"; \
	else \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# The docs site (mkdocs.yml, docs/): --strict, so a broken link, a page missing from the nav or
# an API reference that no longer resolves fails `make test`. Output in .work/site.
docs: env
	$(VENV)/bin/mkdocs build --strict --quiet

test: lint typecheck contracts docs
	$(VENV)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf .venv .tools .work .pytest_cache .ruff_cache .mypy_cache

# duban: the two commands of the README are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration acceptance bench clean browser converters

# -qq: pip prints errors only (a machine's pip configuration can add a warning per package,
# e.g. for an extra index directory that does not exist, and `make demo` should stay quiet).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/duban demo --reset $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Browser tests use Debian's chromium (and CJK fonts so reports render Chinese); install them
# when we can (root with apt), else the browser tests skip.
BROWSER_PACKAGES := chromium chromium-driver fonts-noto-cjk
browser:
	@dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null) \
	  || echo "chromium not installed: browser tests will be skipped"; }

# Reading .doc/.wps plans uses LibreOffice headless (antiword as the text-only fallback); the
# tests that convert documents need them. Installed the same way as the browser packages.
CONVERTER_PACKAGES := libreoffice-writer-nogui antiword fonts-noto-cjk
converters:
	@dpkg -s $(CONVERTER_PACKAGES) >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CONVERTER_PACKAGES) >/dev/null) \
	  || echo "libreoffice/antiword not installed: .doc conversion tests will be skipped"; }

test: lint typecheck browser converters
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

acceptance: $(STAMP)
	$(BIN)/pytest tests/acceptance $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .duban .mypy_cache .pytest_cache .ruff_cache

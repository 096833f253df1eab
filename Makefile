# The book's commands. `make book` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
QUARTO_MIN := 1.9
export QUARTO_PYTHON := $(abspath $(BIN)/python)
export MPLBACKEND := Agg

.PHONY: install test cache check book chapter publish clean

install: $(STAMP)

# pip (not uv or poetry): it finds the local CPU build of torch on the project's machines.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nnlab)" >/dev/null
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

cache: $(STAMP)
	$(BIN)/nnlab run --all --profile full

check: $(STAMP)
	$(BIN)/nnlab check

# Renders with Quarto; finds or installs it, and renders HTML only with a Quarto older than 1.9.
book: cache
	@quarto=$$(command -v quarto || true); \
	if [ -z "$$quarto" ]; then \
	  echo "quarto is not on PATH: trying pip install quarto-cli"; \
	  if $(BIN)/pip install --quiet quarto-cli >$(VENV)/quarto-cli-install.log 2>&1; then quarto=$(BIN)/quarto; \
	  else echo "pip install quarto-cli failed (see $(VENV)/quarto-cli-install.log)"; fi; \
	fi; \
	if [ -z "$$quarto" ] || ! "$$quarto" --version >/dev/null 2>&1; then \
	  echo "Quarto is needed to render the book and could not be installed here."; \
	  echo "Install Quarto $(QUARTO_MIN) or newer from https://quarto.org/docs/get-started/ and run 'make book' again."; \
	  echo "(Everything else is done: the package is installed and cache/ is up to date.)"; \
	  exit 1; \
	fi; \
	version=$$("$$quarto" --version); \
	if [ "$$(printf '%s\n' "$(QUARTO_MIN)" "$$version" | sort -V | head -n1)" = "$(QUARTO_MIN)" ]; then \
	  "$$quarto" render; \
	else \
	  echo "Quarto $$version is older than $(QUARTO_MIN), which typst books need: rendering the HTML only."; \
	  "$$quarto" render --to html; \
	fi

chapter: $(STAMP)
	@test -n "$(CH)" || { echo "usage: make chapter CH=<file stem>, e.g. CH=softmax-jacobian"; exit 2; }
	quarto render chapters/$(CH).qmd

publish: cache
	quarto publish gh-pages --no-prompt

clean:
	rm -rf _book _freeze .quarto

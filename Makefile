# The book's commands. They work from a plain shell: no venv needs to be activated.
PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed-stamp
# Extras installed by `make install`: dev = book (Jupyter, PyYAML) + test tools. CI's site build uses book.
EXTRAS      ?= dev
# PyTorch's CPU-only wheels, used for torch alone (PyPI's Linux wheel is the CUDA build, gigabytes).
# Empty (`make install TORCH_INDEX=`) to take torch from pip's own configuration.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SPEC  := $(shell sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)
QUARTO_MIN  := 1.9
# Rendering one chapter: html (fast) by default; `make chapter CH=runge TO=typst` for its PDF.
TO          ?= html

# Quarto runs the pre-render command `python -m nnlab.freeze` with the `python` found on PATH (only
# `.py` scripts get QUARTO_PYTHON), and the Jupyter engine uses QUARTO_PYTHON: both must be the venv's.
export PATH          := $(abspath $(BIN)):$(PATH)
export QUARTO_PYTHON := $(abspath $(BIN)/python)
export MPLBACKEND    := Agg

.PHONY: install test cache check book chapter preview publish clean

install: $(STAMP)

# pip and a venv (not uv or poetry). torch first, alone, from TORCH_INDEX when that index answers;
# otherwise (no network, a mirror, or these machines' local wheels) from pip's configured sources.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -z "$(TORCH_INDEX)" ]; then \
	  echo "TORCH_INDEX is empty: torch comes from pip's configured indexes"; \
	elif $(BIN)/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' \
	     "$(TORCH_INDEX)/torch/" 2>/dev/null; then \
	  echo "installing $(TORCH_SPEC) from $(TORCH_INDEX)"; \
	  $(BIN)/pip install --quiet --retries 2 --timeout 60 --no-deps --index-url "$(TORCH_INDEX)" "$(TORCH_SPEC)" \
	  || echo "warning: $(TORCH_SPEC) could not be installed from $(TORCH_INDEX); trying pip's configured indexes"; \
	else \
	  echo "$(TORCH_INDEX) does not answer: torch comes from pip's configured indexes"; \
	  echo "(on a machine that reaches only PyPI, Linux then gets the CUDA build of torch)"; \
	fi
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nnlab)" >/dev/null
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

cache: $(STAMP)
	$(BIN)/nnlab run --all --profile full

check: $(STAMP)
	$(BIN)/nnlab check

# One Quarto lookup for every target that renders: `quarto` on PATH (the venv's bin comes first), else
# `pip install quarto-cli` into the venv; sets $$quarto and $$quarto_ok (1 when it is $(QUARTO_MIN) or newer).
define find_quarto
quarto=$$(command -v quarto || true); \
if [ -z "$$quarto" ]; then \
  echo "quarto is not on PATH: trying pip install quarto-cli"; \
  if $(BIN)/pip install --quiet 'quarto-cli>=$(QUARTO_MIN)' >$(VENV)/quarto-cli-install.log 2>&1; then \
    quarto=$(abspath $(BIN))/quarto; \
  else echo "pip install quarto-cli failed (see $(VENV)/quarto-cli-install.log)"; fi; \
fi; \
if [ -z "$$quarto" ] || ! "$$quarto" --version >/dev/null 2>&1; then \
  echo "Quarto is needed here and could not be installed."; \
  echo "Install Quarto $(QUARTO_MIN) or newer from https://quarto.org/docs/get-started/ and run make again."; \
  exit 1; \
fi; \
version=$$("$$quarto" --version); \
quarto_ok=$$([ "$$(printf '%s\n' "$(QUARTO_MIN)" "$$version" | sort -V | head -n1)" = "$(QUARTO_MIN)" ] && echo 1)
endef

# Renders the book (HTML and the Typst PDF); with a Quarto older than 1.9, the HTML only.
book: cache
	@$(find_quarto); \
	if [ -n "$$quarto_ok" ]; then "$$quarto" render; \
	else echo "Quarto $$version is older than $(QUARTO_MIN), which Typst books need: rendering the HTML only."; \
	  "$$quarto" render --to html; fi

# CH is a chapter's file stem or path (runge, chapters/runge.qmd). Quarto ignores freeze for a single
# file: this always re-executes the chapter.
CHAPTERS := $(sort $(basename $(notdir $(wildcard chapters/*.qmd))))
chapter: $(STAMP)
	@stem=$$(basename "$(CH)" .qmd); \
	if [ -z "$(CH)" ] || [ ! -f "chapters/$$stem.qmd" ]; then \
	  if [ -z "$(CH)" ]; then echo "usage: make chapter CH=<chapter> [TO=html|typst]"; \
	  else echo "make chapter: no chapter '$(CH)' (looked for chapters/$$stem.qmd)"; fi; \
	  echo "CH is one of (or chapters/<name>.qmd):"; \
	  for c in $(CHAPTERS); do echo "  $$c"; done; \
	  exit 2; \
	fi; \
	$(find_quarto); \
	"$$quarto" render "chapters/$$stem.qmd" --to $(TO)

# Live preview in the browser; re-renders a chapter when it is saved.
preview: $(STAMP)
	@$(find_quarto); "$$quarto" preview

# Renders exactly what the GitHub workflow deploys: from the committed cache (nothing is trained),
# HTML and PDF into _book/. Publishing is the workflow's job: push to main (see README).
publish: export NNLAB_NO_COMPUTE := 1
publish: check
	@$(find_quarto); \
	if [ -z "$$quarto_ok" ]; then echo "Quarto $$version is older than $(QUARTO_MIN): the published book needs its Typst PDF"; exit 1; fi; \
	"$$quarto" render; \
	echo "_book/ holds the site as the workflow publishes it; push to main to put it online."

clean:
	rm -rf _book _freeze .quarto

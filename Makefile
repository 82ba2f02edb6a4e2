# Everything runs on a fresh clone with Python 3.11 and make, no activation step:
#   make demo      set up .venv and run the main job (the house recipe on the bundled data)
#   make test      set up .venv and run the whole test suite, then the compatibility matrix
#   make test-fast the tests that run no notebook and no nbgrader app: the edit-test loop
#   make release   the student release: release/hw8/ with the notebooks and hw8's wheel
# .venv is the course environment: exactly requirements/lock.txt (scripts/lock.py checks it).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt
RELEASE := release/hw8

# Every recipe finds the course environment's tools first: nbgrader runs `alembic` from
# PATH, and nothing here needs `source .venv/bin/activate`.
export PATH := $(abspath $(BIN)):$(PATH)

# $(call fail,what to do): a failing step's last line (no commas in the text)
fail = { echo "make $@ failed: $(1)" >&2; exit 1; }

.PHONY: demo test test-fast pytest compat lint format lock release clean

$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null || $(call fail,$(PYTHON) not found. Install Python 3.11 or name one: make PYTHON=/path/to/python3.11)
	$(PYTHON) -m venv $(VENV) || $(call fail,$(PYTHON) could not make $(VENV): on Debian or Ubuntu install python3.11-venv)
	$(BIN)/python -m pip install --quiet --upgrade pip || $(call fail,pip could not reach a package index (its message is above). Check the network or proxy and run make again)
	$(BIN)/python -m pip install --quiet -r $(LOCK) || $(call fail,pip could not install $(LOCK) (its message is above). Check the network or proxy and run make again)
	$(BIN)/python -m pip install --quiet -e ".[course,dev]" -c $(LOCK) || $(call fail,pip could not install hw8 itself (its message is above))
	$(BIN)/python scripts/lock.py check --python $(BIN)/python || $(call fail,$(VENV) is not $(LOCK). Start over: rm -rf $(VENV) and run make again)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hw8 recipe --out runs/recipe || $(call fail,the main job stopped (its message is above))

test: lint pytest compat

pytest: $(STAMP)
	$(BIN)/python -m pytest -q || $(call fail,tests failed (listed above). Rerun one with $(BIN)/python -m pytest -q tests/FILE.py -k NAME)

# Every test but those marked slow (they run notebooks or nbgrader apps): a few minutes
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" || $(call fail,tests failed (listed above). Rerun one with $(BIN)/python -m pytest -q tests/FILE.py -k NAME)

# hw8 installed over Colab-like and lowest-declared versions: none may move, tests and
# notebooks must pass (scripts/compat_matrix.py; a few minutes)
compat: $(STAMP)
	$(BIN)/python scripts/compat_matrix.py || $(call fail,an environment of the compatibility matrix failed (its log is above))

# The student release, release/hw8/: the notebooks (solutions and hidden tests removed by
# nbgrader) and hw8's wheel, which each notebook's first cell installs on Colab or Kaggle.
# The wheel is built into the release only, never into notebooks/hw8/ (autograde would copy
# it over every submission). A failing step leaves no new gradebook.db and no wheel behind.
release: $(STAMP)
	@rm -f notebooks/hw8/hw8-*.whl
	$(BIN)/hw8 course check || $(call fail,fix the notebook problems listed above and run make release again)
	@had_gradebook=$$(test -e gradebook.db && echo yes); \
	echo "$(BIN)/nbgrader generate_assignment hw8 --force"; \
	$(BIN)/nbgrader generate_assignment hw8 --force || { \
		test -n "$$had_gradebook" || rm -f gradebook.db; \
		$(call fail,nbgrader could not make $(RELEASE) (its log is above)); }
	@echo "$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w $(RELEASE) ."
	@$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w $(RELEASE) . || { \
		rm -f $(RELEASE)/hw8-*.whl; $(call fail,pip could not build hw8's wheel (its message is above)); }
	@echo "make release: $(RELEASE)/ holds $$(ls $(RELEASE) | grep -c '\.ipynb$$') notebooks and $$(cd $(RELEASE) && ls hw8-*.whl): hand out that folder."

lint: $(STAMP)
	$(BIN)/ruff check . || $(call fail,ruff found problems (above). make format fixes most of them)
	$(BIN)/ruff format --check . || $(call fail,files are not formatted. Run make format)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# after adding a dependency: install it into .venv, then rewrite the lock from .venv
# (.venv/bin/pip install -e ".[course,dev]" -c requirements/lock.txt; make lock; review the diff)
lock:
	$(BIN)/python scripts/lock.py write --python $(BIN)/python

clean:
	rm -rf $(VENV) runs release autograded submitted feedback gradebook.db grade_reports grades.csv

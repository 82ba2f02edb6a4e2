# Two commands do everything on a fresh clone with Python 3.11 and make:
#   make demo   set up .venv and run the main job (the boss recipe on the bundled data)
#   make test   set up .venv and run the whole test suite, then the compatibility matrix
# .venv is the course environment: exactly requirements/lock.txt (scripts/lock.py checks it).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt

.PHONY: demo test pytest compat lint format lock release clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet -e ".[course,dev]" -c $(LOCK)
	$(BIN)/python scripts/lock.py check --python $(BIN)/python
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hw8 boss --out runs/boss

test: lint pytest compat

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

# hw8 installed over Colab-like and lowest-declared versions: none may move, tests and
# notebooks must pass (scripts/compat_matrix.py; a few minutes)
compat: $(STAMP)
	$(BIN)/python scripts/compat_matrix.py

# the student release, release/hw8/: the notebooks (solutions and hidden tests removed) and
# hw8's wheel, which each notebook's first cell installs on Colab or Kaggle
release: $(STAMP)
	rm -f notebooks/hw8/hw8-*.whl
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w notebooks/hw8 .
	$(BIN)/hw8 course check
	$(BIN)/nbgrader generate_assignment hw8 --force

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# after adding a dependency: install it into .venv, then rewrite the lock from .venv
# (.venv/bin/pip install -e ".[course,dev]" -c requirements/lock.txt; make lock; review the diff)
lock:
	$(BIN)/python scripts/lock.py write --python $(BIN)/python

clean:
	rm -rf $(VENV) runs release autograded submitted feedback gradebook.db grade_reports

"""The check kit: what the notebooks' test cells and ``hw8 validate`` use.

``hw8.checks.assertions`` compares a student's result with a reference and says what is
wrong; ``hw8.checks.forbidden`` blocks the routes an exercise forbids while its test
runs; ``hw8.checks.leaderboard`` grades notebook 05's challenge against the baselines;
``hw8.checks.validate`` runs a notebook's visible tests without nbgrader. The kit uses
the library (``hw8/``) and never the instructor tools (``hw8/course/``).
"""

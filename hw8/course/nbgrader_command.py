"""``python -m hw8.course.nbgrader_command ARGS`` runs ``nbgrader ARGS``, a second faster.

Importing nbformat imports jsonschema, and jsonschema builds a grammar for the "iri"
format on import when ``rfc3987-syntax`` is installed (JupyterLab's dependencies install
it): a second of CPU in every process, for a format no notebook schema uses. The course's
grader starts one nbgrader process per submission and one for the export, and imports
nbgrader itself, so each of these blocks that import (:func:`skip_iri_grammar`); nothing
else changes.
"""

import sys


def skip_iri_grammar() -> None:
    """Make ``import rfc3987_syntax`` fail in this process, so that jsonschema leaves its
    "iri" format out (call it before anything imports jsonschema)."""
    sys.modules.setdefault("rfc3987_syntax", None)  # None in sys.modules: ImportError


if __name__ == "__main__":
    skip_iri_grammar()

    from nbgrader.apps.nbgraderapp import main

    main()

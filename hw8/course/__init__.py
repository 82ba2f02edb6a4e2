"""Instructor tools: what only a course runs, never a student's notebook.

``hw8.course.lint`` checks the source notebooks before a release (``hw8 course check``).
Modules here import nbgrader and friends lazily; they come with the ``course`` extra.
"""

"""Instructor tools: what only a course runs, never a student's notebook.

``hw8.course.lint`` checks the source notebooks before a release (``hw8 course check``);
``hw8.course.autograde`` autogrades a whole class in parallel, each submission in a sandbox
(``hw8 course grade``). Modules here import nbgrader and friends lazily; they come with
the ``course`` extra.
"""

"""Tests of hw8/course/, one file per module."""

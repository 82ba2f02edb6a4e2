"""Tests of hw8/checks/, one file per module."""

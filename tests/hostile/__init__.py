"""Hostile input: each break found by the red-team pass (issue 16), as a test."""

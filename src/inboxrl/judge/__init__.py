"""Judging answers and turning an episode's rubric into a reward."""

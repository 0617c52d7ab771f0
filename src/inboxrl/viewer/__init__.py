"""Viewer of rollouts and reward-hacking checks."""

"""Trainers: ``es`` (evosax). Gradient trainers (adam, ppo) are a later issue."""

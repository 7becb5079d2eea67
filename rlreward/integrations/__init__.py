"""Entrances to the grading path: reward specs (YAML), VERL and TRL adapters."""

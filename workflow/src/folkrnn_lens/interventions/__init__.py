"""Interventions: what the model's predictions depend on (docs/interventions.md)."""

"""Analyses over runs: counterfactuals (regions, Flexible Start, Pause & Resume)."""

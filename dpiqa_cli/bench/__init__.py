"""Benchmarks that run models: correlations on dataset splits (`dataset`) and speed (`speed`)."""

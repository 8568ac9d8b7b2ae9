"""Prefect flows: supervision passes, reviews, simulation and interactive check-ins."""

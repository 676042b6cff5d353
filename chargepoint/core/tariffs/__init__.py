"""Tariffs: what a session costs, and the running cost of each transaction."""

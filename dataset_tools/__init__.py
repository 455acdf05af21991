"""Turning raw data into RecBole atomic datasets and checking them (no torch imports)."""

"""Offline analysis: direction, destinations, synthesis, diff. Pure functions over typed values."""

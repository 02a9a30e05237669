"""Layers (filled in below)."""

"""Golive's event contracts."""

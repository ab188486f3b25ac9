"""Golive's audit service."""

"""Keel: a self-hosted backend platform with a PocketBase-compatible API."""

__version__ = "0.1.0"

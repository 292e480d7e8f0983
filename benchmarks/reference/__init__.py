"""Paired checks of purerl agents against the authors' code (see README.md here)."""

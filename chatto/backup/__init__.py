"""Backups, restores and key export/import (CLI commands, never on the serving loop)."""

"""Integrations of watchd with other frameworks (opt-in; each imports its framework)."""

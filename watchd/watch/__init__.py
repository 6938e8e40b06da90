"""Watching: one interface, an inotify and a poll backend, and one place that chooses."""

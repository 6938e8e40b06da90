"""watchd: a file-watch supervisor daemon."""

__version__ = "0.1.0"

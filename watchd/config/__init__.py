"""Configuration: the model, the YAML loader with precise errors, and config diffs."""

"""watchd's benchmark suite: watchd and its peers, side by side, in one run."""

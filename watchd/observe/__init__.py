"""What the daemon tells its observers: the event history and the metrics."""

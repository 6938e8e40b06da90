"""Supervision: the job state machine (pure) and the process driver around it."""

"""How watchctl shows what the daemon answers: tables, events, log lines, colours."""

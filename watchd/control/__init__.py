"""The control socket: a newline-delimited JSON protocol, its server, and watchctl."""

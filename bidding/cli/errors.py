"""The failure every command reports the same way."""


class CommandError(Exception):
    """A failure reported as one line on stderr and exit status 1."""

"""The error for bad input from a user of the `minieks` command: one line on stderr, exit 2."""


class UsageError(Exception):
    pass

"""Errors a user can fix. The CLI prints their message, without a traceback, and exits 2."""


class UserInputError(ValueError):
    """Bad input from the user: the message names the place (key, file, column, row)."""


class ConfigError(UserInputError):
    """A configuration value is invalid; the message names the key and what is allowed."""


class DataError(UserInputError):
    """The data cannot be used; the message names the file, the column and the first bad row."""

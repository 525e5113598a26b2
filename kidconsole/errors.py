"""The one error type the CLI and the console show to users as-is."""


class KidconsoleError(Exception):
    """A user-facing error: the message names the file, line or key at fault."""

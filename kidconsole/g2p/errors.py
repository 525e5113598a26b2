"""The G2P's user-facing error."""

from __future__ import annotations

from kidconsole.errors import KidconsoleError


class G2PError(KidconsoleError):
    """A transcript the G2P cannot convert; the message names it and the characters at fault."""

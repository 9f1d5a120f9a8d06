"""Time spans as users write them on the command line (``-t 1h30m``), turned into seconds."""

from __future__ import annotations

import re

# Units must come in this order, each at most once: "1h30m10s", "90m", "45s".
_SPAN = re.compile(r"(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?")

_EXAMPLES = "20, 20s, 3m, 2h, 1h20m, 3h30m10s"


def parse_timespan(time_str: str | int) -> int:
    """Returns the number of seconds in a time span such as ``"300s"``, ``"20m"`` or ``"1h30m"``.

    A bare number counts as seconds (``"90"`` is 90). Hours, minutes and seconds may be combined
    in that order (``"3h30m10s"``).

    Args:
        time_str: The time span as text; an int is taken as seconds.

    Returns:
        The time span in whole seconds.

    Raises:
        ValueError: The text is empty or not a time span; the message shows valid examples.
    """
    if isinstance(time_str, int) and not isinstance(time_str, bool) and time_str >= 0:
        return time_str
    text = str(time_str).strip() if time_str is not None else ""
    if not text:
        raise ValueError(f"Invalid time span format: empty value. Use e.g. {_EXAMPLES}")
    if text.isascii() and text.isdigit():
        return int(text)
    match = _SPAN.fullmatch(text)
    if match is None or not any(match.groups()):
        raise ValueError(f"Invalid time span format: {time_str!r}. Use e.g. {_EXAMPLES}")
    hours, minutes, seconds = (int(part or 0) for part in match.group("h", "m", "s"))
    return hours * 3600 + minutes * 60 + seconds

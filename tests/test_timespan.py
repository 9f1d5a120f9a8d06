"""Time spans as -t/--run-time and -s/--stop-timeout take them."""

from __future__ import annotations

import pytest

from horde.util.timespan import parse_timespan


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300s", 300),
        ("20m", 1200),
        ("3h", 10800),
        ("1h30m", 5400),
        ("1h30m10s", 5410),
        ("2h10s", 7210),
        ("90m", 5400),
        ("20", 20),
        ("0", 0),
        (" 5m ", 300),
        (45, 45),
    ],
)
def test_valid_spans(text, seconds):
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize("text", ["10x", "1m30", "30s1m", "1h1h", "h", "-5", "1.5h", "1 h", "²", "1d"])
def test_invalid_span_names_the_value_and_shows_examples(text):
    with pytest.raises(ValueError) as raised:
        parse_timespan(text)
    message = str(raised.value)
    assert message.startswith(f"Invalid time span format: {text!r}.")
    assert "Use e.g. 20, 20s, 3m, 2h, 1h20m, 3h30m10s" in message


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_span(text):
    with pytest.raises(ValueError, match="empty value"):
        parse_timespan(text)


def test_message_of_the_brief():
    with pytest.raises(ValueError) as raised:
        parse_timespan("10x")
    assert str(raised.value) == "Invalid time span format: '10x'. Use e.g. 20, 20s, 3m, 2h, 1h20m, 3h30m10s"

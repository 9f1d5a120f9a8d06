"""Optional user types and helpers, as in ``locust.contrib`` (``contrib.fasthttp.FastHttpUser``)."""

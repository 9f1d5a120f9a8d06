"""Logging state shared by the runner and the CLI (Locust's ``locust.log``)."""

# Set when an event listener or a greenlet raised an unhandled exception: the run then exits 2.
unhandled_greenlet_exception = False

"""horde's web UI (Locust's ``locust.web``): a Flask app in the same process and gevent hub as
the users, with Locust's endpoints and JSON.

- ``app.py``: ``WebUI`` (the app, the server, ``template_args``, ``auth_required_if_enabled``)
- ``routes.py``: the endpoints (``/swarm``, ``/stats/requests``, the CSV downloads, ...)
- ``history.py``: the per-second history behind ``/stats/history`` (the charts)
- ``auth.py``: ``--web-login`` (HTTP Basic auth or a token)
- ``templates/``, ``static/``: the page and its assets (``index.html`` gets ``template_args``)
"""

from horde.web.app import WebUI

__all__ = ["WebUI"]

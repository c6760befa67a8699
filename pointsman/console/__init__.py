"""The web console: ``GET /console`` on the gateway — endpoints, router, spend and a "Try it" form.

Server-rendered HTML (Jinja2 templates in ``templates/``), charts drawn as inline SVG in Python
(``charts.py``), one stylesheet in ``static/``: nothing is fetched from the network, nothing needs building.
The gateway mounts it with ``mount_console(app, settings)``.
"""

from __future__ import annotations

from pointsman.console.routes import mount_console, router

__all__ = ["mount_console", "router"]

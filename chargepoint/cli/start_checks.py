"""What ``chargepoint run`` refuses only when it starts, for ``check-config`` to refuse first.

The configuration package checks the file on its own; a few refusals need
something outside it: the dashboard's exposure rule reads whether a password
is stored in the state directory, and its TLS pair must load as a certificate
and its key. ``check-config`` runs the daemon's own checks (imported from the
web package, never copied), so the two cannot disagree.
"""

from __future__ import annotations

from chargepoint.config import Config, ConfigError


def start_problems(config: Config) -> list[ConfigError]:
    """The daemon's start-time refusals for ``config`` (empty if it would start)."""
    if not config.web.enabled:
        return []
    from chargepoint.web.access import check_exposure
    from chargepoint.web.server import tls_context

    problems = []
    for rule in (check_exposure, tls_context):
        try:
            rule(config)
        except ConfigError as exc:
            problems.append(exc)
    return problems

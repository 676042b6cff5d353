"""Schema failures as the CALLERROR the version's specification names for the rule that failed.

The library answers every schema failure with one code (``FormatViolation``,
even on 1.6, which spells it ``FormationViolation``) and only checks payloads
it has a handler for. Adapters validate with the official schemas themselves
and map the failed JSON-schema rule to their version's error class.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from jsonschema.exceptions import best_match
from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType, get_validator


def schema_error(action: str, payload: Any, version: str, errors: Mapping[str, type[OCPPError]],
                 fallback: type[OCPPError], *, decimal: bool = False) -> OCPPError | None:
    """The CALLERROR for a CALL payload that breaks its schema, or None if it does not.

    ``errors`` maps the JSON-schema rule (``type``, ``required``, ``enum`` ...) to
    the version's error class; ``decimal``: numbers are checked as Decimal (the
    schemas with precision rules).
    """
    validator = get_validator(MessageType.Call, action, version,
                              parse_float=Decimal if decimal else float)
    if decimal:
        payload = json.loads(json.dumps(payload), parse_float=Decimal)
    error = best_match(validator.iter_errors(payload))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    kind = errors.get(str(error.validator), fallback)
    return kind(description=f"{where}: {error.message}", details={})

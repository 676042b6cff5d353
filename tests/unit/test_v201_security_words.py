"""Every security event the core records has its 2.0.1 type word, within the schema's 50 characters."""

from chargepoint.core.security.security_log import SecurityEvent
from chargepoint.protocol.v201.security import EVENT_TYPES


def test_every_neutral_event_has_a_201_type_word() -> None:
    assert set(EVENT_TYPES) == set(SecurityEvent)
    assert all(0 < len(word) <= 50 for word in EVENT_TYPES.values())
    assert len(set(EVENT_TYPES.values())) == len(EVENT_TYPES)

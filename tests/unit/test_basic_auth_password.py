"""The Basic auth password: each OCPP version's own bounds, and the file's text form.

1.6's AuthorizationKey is 16 to 20 octets written in hex (the security
whitepaper); 2.0.1's BasicAuthPassword is a passwordString of 16 to 40
characters sent as the text itself. The file takes either the hex key or the
text password, under two keys so that a password made of hex digits is never
misread.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chargepoint.config import ConfigError, parse
from chargepoint.connection import basic_auth_header
from chargepoint.core.settings import Settings
from chargepoint.protocol.v16.keys import ChangeStatus, KeyCatalogue
from chargepoint.protocol.v201.device_model import DeviceModel

LONG = "Operator-Pass_24chars:ok"  # 24 characters of passwordString


def config(**ocpp: Any) -> Any:
    return parse({"station": {"identity": "CP-7"},
                  "ocpp": {"csms_url": "ws://csms.example/ocpp", **ocpp}})


def set_password(model: DeviceModel, value: str) -> dict[str, Any]:
    return model.set_variables([{"component": {"name": "SecurityCtrlr"},
                                 "variable": {"name": "BasicAuthPassword"}, "attribute_value": value}])[0]


def test_a_201_password_of_24_to_40_characters_is_accepted_and_sent_as_text():
    settings = Settings(config())
    model = DeviceModel(settings, 1, clock=lambda: 0.0)
    for value in (LONG, "p" * 40):
        assert set_password(model, value)["attribute_status"] == "Accepted"
        header = basic_auth_header("CP-7", str(settings.get("authorization_key")))
        assert base64.b64decode(header.removeprefix("Basic ")) == b"CP-7:" + value.encode()


@pytest.mark.parametrize("value, words", [("p" * 15, "16 to 40"), ("p" * 41, "16 to 40"),
                                           ("sixteen-chars-ok!", "not '!'")])
def test_a_201_password_outside_its_bounds_is_rejected_with_the_reason(value, words):
    settings = Settings(config())
    result = set_password(DeviceModel(settings, 1, clock=lambda: 0.0), value)
    assert result["attribute_status"] == "Rejected"
    assert words in result["attribute_status_info"]["additional_info"]
    assert settings.get("authorization_key") == ""


def test_16_authorization_key_keeps_to_16_to_20_octets_in_hex():
    keys = KeyCatalogue(Settings(config()), 1)
    assert keys.change("AuthorizationKey", "00" * 20) is ChangeStatus.ACCEPTED
    assert keys.change("AuthorizationKey", "00" * 24) is ChangeStatus.REJECTED
    assert "32 to 40 hexadecimal digits" in str(keys.refusal("AuthorizationKey", "00" * 24))
    assert keys.change("AuthorizationKey", "zz" * 16) is ChangeStatus.REJECTED


def test_the_file_takes_the_password_as_text_and_the_key_as_hex():
    text = config(security_profile=1, basic_auth_password=LONG)
    assert bytes.fromhex(text.ocpp.authorization_key) == LONG.encode()
    digits = "0123456789abcdef0123"  # a text password of hex digits stays text
    assert bytes.fromhex(config(basic_auth_password=digits).ocpp.authorization_key) == digits.encode()
    assert config(authorization_key="00" * 16).ocpp.authorization_key == "00" * 16


@pytest.mark.parametrize("ocpp, words", [
    ({"basic_auth_password": "short"}, "ocpp.basic_auth_password: must be 16 to 40 characters"),
    ({"basic_auth_password": "p" * 41}, "must be 16 to 40 characters"),
    ({"basic_auth_password": "with a space in it!"}, "printable ASCII without spaces"),
    ({"basic_auth_password": LONG, "authorization_key": "00" * 16}, "not both"),
])
def test_a_bad_file_password_names_the_key_and_reason(ocpp, words):
    with pytest.raises(ConfigError) as caught:
        config(**ocpp)
    assert words in str(caught.value)

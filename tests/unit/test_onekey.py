"""Each key once, in any case (``appliance/onekey.py``)."""

from __future__ import annotations

import json

import pytest

from appliance.onekey import once


@pytest.mark.parametrize(("text", "named"), [
    ('{"a": 1, "b": 2}', None),
    ('{"a": {"a": 1}, "b": [{"a": 2}]}', None),  # each object on its own
    ('{"a": 1, "a": 2}', "a"),
    ('{"operation": "download", "Operation": "upload"}', "Operation"),
    ('{"x": {"k": 1, "K": 2}}', "K"),
    ('{"stra\\u00dfe": 1, "STRASSE": 2}', "STRASSE"),  # casefold: ß is ss
])
def test_a_key_named_twice_in_any_case_is_refused(text: str, named: str | None) -> None:
    if named is None:
        assert json.loads(text, object_pairs_hook=once) == json.loads(text)
        return
    with pytest.raises(ValueError, match=f"the key '{named}' is named twice"):
        json.loads(text, object_pairs_hook=once)

"""The model name a usage record keeps (:func:`appliance.usage.model_name`): the model host
says it, and one echoing the request's model lets an agent write it."""

from __future__ import annotations

import pytest

from appliance.usage import MODEL_LIMIT, model_name


@pytest.mark.parametrize(("said", "kept"), [
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
    ("x" * MODEL_LIMIT, "x" * MODEL_LIMIT),
    ("x" * (MODEL_LIMIT + 1), "x" * MODEL_LIMIT + "\u2026"),
    ("y" * 1_000_000, "y" * MODEL_LIMIT + "\u2026"),
    ("gpt\n5", "gpt\\n5"),
    ("cl\u200daude\x1b[2J", "cl<U+200D>aude\\x1b[2J"),
    ("unknown", "unknown"),
])
def test_a_model_name_is_kept_bounded_on_one_line_its_hidden_characters_shown(
        said: str, kept: str) -> None:
    assert model_name(said) == kept

"""Token usage and what it costs: the records and the price table (pure).

The proxy reads each model answer's usage as it streams past (``proxy/meter.py``) and
records a :class:`Usage` per session, model and day (``appliance/controlstore.py``). Tokens
are kept apart by kind, the way the providers bill them: ``input`` (not from a cache),
``output``, ``cache_read`` and ``cache_write``. OpenAI counts cached input inside its input
tokens; the meter takes them out, so the four kinds never overlap.

What the tokens cost comes from a :class:`PriceTable` (US dollars per million tokens, by
model), with defaults for current models and ``[prices."<model>"]`` tables in
``config.toml`` that add or replace entries. Cost is computed when shown, from the table in
force then. A model the table does not know is counted in tokens and its cost is unknown
(None), never guessed; against a budget (:meth:`PriceTable.bound`) it costs what the
dearest model of its maker (or of the table) would, so a model nobody priced spends a
budget too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from appliance.errors import ConfigError, refuse_unknown
from appliance.quoted import shown

#: The most of a model's name a usage record keeps (characters, before hidden ones are shown).
MODEL_LIMIT = 200


def model_name(said: str) -> str:
    """The model an answer named, as the usage records keep it: the answer is the model
    host's (one echoing the request's model lets an agent write it), so it is cut to
    :data:`MODEL_LIMIT` characters (a ``\u2026`` where it was cut) and shown on one line,
    each control or hidden character as what it is (:func:`appliance.quoted.shown`)."""
    return shown(said[:MODEL_LIMIT] + "\u2026" if len(said) > MODEL_LIMIT else said)


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def tokens(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    def __add__(self, other: Usage) -> Usage:
        return Usage(input=self.input + other.input, output=self.output + other.output,
                     cache_read=self.cache_read + other.cache_read,
                     cache_write=self.cache_write + other.cache_write)


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """US dollars per million tokens of each kind."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def cost(self, usage: Usage) -> float:
        return (usage.input * self.input + usage.output * self.output
                + usage.cache_read * self.cache_read
                + usage.cache_write * self.cache_write) / 1_000_000


def _p(inp: float, out: float, read: float, write: float) -> Price:
    return Price(input=inp, output=out, cache_read=read, cache_write=write)


#: Public list prices (USD per million tokens) when this table was written; edit them in
#: ``config.toml`` when they change. Keys match a model id exactly or as its prefix
#: followed by ``-``, ``.``, ``@`` or ``:`` (dated and suffixed ids); the longest key wins.
DEFAULT_PRICES: Mapping[str, Price] = {
    "claude-opus-4-5": _p(5, 25, 0.5, 6.25),
    "claude-opus-4-1": _p(15, 75, 1.5, 18.75),
    "claude-opus-4": _p(15, 75, 1.5, 18.75),
    "claude-sonnet-4-5": _p(3, 15, 0.3, 3.75),
    "claude-sonnet-4": _p(3, 15, 0.3, 3.75),
    "claude-3-7-sonnet": _p(3, 15, 0.3, 3.75),
    "claude-haiku-4-5": _p(1, 5, 0.1, 1.25),
    "claude-3-5-haiku": _p(0.8, 4, 0.08, 1),
    "gpt-5": _p(1.25, 10, 0.125, 1.25),
    "gpt-5-codex": _p(1.25, 10, 0.125, 1.25),
    "gpt-5-mini": _p(0.25, 2, 0.025, 0.25),
    "gpt-5-nano": _p(0.05, 0.4, 0.005, 0.05),
    "gpt-4.1": _p(2, 8, 0.5, 2),
    "gpt-4.1-mini": _p(0.4, 1.6, 0.1, 0.4),
    "gpt-4o": _p(2.5, 10, 1.25, 2.5),
    "gpt-4o-mini": _p(0.15, 0.6, 0.075, 0.15),
    "o1": _p(15, 60, 7.5, 15),
    "o1-mini": _p(1.1, 4.4, 0.55, 1.1),
    "o1-pro": _p(150, 600, 150, 150),
    "o3": _p(2, 8, 0.5, 2),
    "o3-pro": _p(20, 80, 20, 20),
    "o3-deep-research": _p(10, 40, 2.5, 10),
    "gpt-5-pro": _p(15, 120, 15, 15),
    "claude-3-opus": _p(15, 75, 1.5, 18.75),
    "o4-mini": _p(1.1, 4.4, 0.275, 1.1),
    "codex-mini-latest": _p(1.5, 6, 0.375, 1.5),
    # Gemini 2.5 Pro at its dearer tier (prompts over 200k tokens): never under-counted.
    "gemini-2.5-pro": _p(2.5, 15, 0.625, 2.5),
    "gemini-2.5-flash": _p(0.3, 2.5, 0.075, 0.3),
    "gemini-2.5-flash-lite": _p(0.1, 0.4, 0.025, 0.1),
}

_SEPARATORS = "-.@:"
_KINDS = ("input", "output", "cache_read", "cache_write")
#: Model names only one maker serves: an unpriced one costs its maker's dearest price.
_MAKERS = ("claude", "gemini")


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceTable:
    prices: Mapping[str, Price]

    def price_for(self, model: str) -> Price | None:
        model = model.lower()
        best: str | None = None
        for key in self.prices:
            fits = model == key or (model.startswith(key) and model[len(key)] in _SEPARATORS)
            if fits and (best is None or len(key) > len(best)):
                best = key
        return self.prices[best] if best is not None else None

    def cost(self, model: str, usage: Usage) -> float | None:
        """What ``usage`` of ``model`` cost, or None when the model has no price."""
        price = self.price_for(model)
        return price.cost(usage) if price is not None else None

    def bound(self, model: str, usage: Usage) -> float:
        """What ``usage`` of ``model`` spends of a budget: its cost, or for a model without
        a price what it would cost at the dearest price of each kind among its maker's
        models in the table (a ``claude`` or ``gemini`` name: only that maker serves it), or
        the whole table's (the model is the agent's to choose: an unpriced one must not
        spend for nothing)."""
        price = self.price_for(model)
        if price is None:
            maker = next((m for m in _MAKERS if model.lower().startswith(m)), None)
            peers = [p for name, p in self.prices.items()
                     if maker is not None and name.startswith(maker)] \
                or list(self.prices.values())
            price = Price(**{kind: max((getattr(p, kind) for p in peers), default=0.0)
                             for kind in _KINDS})
        return price.cost(usage)


DEFAULT_TABLE = PriceTable(prices=DEFAULT_PRICES)


def _amount(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where} must be a number of US dollars per million tokens, "
                          f"0 or more (it is {value!r})")
    return float(value)


def parse_prices(doc: object, origin: str) -> PriceTable:
    """``[prices."<model>"]`` tables: input and output required; cache_read and
    cache_write default to the input price (never under-counted)."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{origin} [prices] must be a table of models, like "
                          '[prices."claude-sonnet-4-5"] input = 3.0, output = 15.0')
    prices = dict(DEFAULT_PRICES)
    for model, entry in doc.items():
        where = f'{origin} [prices."{model}"]'
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table with input and output prices")
        refuse_unknown(entry, _KINDS, where)
        missing = [k for k in ("input", "output") if k not in entry]
        if missing:
            raise ConfigError(f"{where}: {' and '.join(missing)} required "
                              "(US dollars per million tokens)")
        inp = _amount(entry["input"], f"{where} input")
        prices[str(model).lower()] = Price(
            input=inp, output=_amount(entry["output"], f"{where} output"),
            cache_read=_amount(entry.get("cache_read", inp), f"{where} cache_read"),
            cache_write=_amount(entry.get("cache_write", inp), f"{where} cache_write"))
    return PriceTable(prices=prices)

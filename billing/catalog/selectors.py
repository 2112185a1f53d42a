"""Selectors over the price catalog: which API model a picker id means, and its prices at a time."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from billing.catalog.price_snapshots import Prices, prices_from_version
from billing.models import ApiModel, ModelAlias, PriceVersion

_DATED_SUFFIX = re.compile(r"^(?P<base>.+)-(?P<date>20\d{6})$")


class UnknownModel(LookupError):
    """The id is neither a picker id nor an API model in the catalog."""


class NoPriceVersion(LookupError):
    """The model has no price version at all."""


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    model_id: str  # what the caller asked for
    alias: str | None  # the picker id, when one was used
    api_model: ApiModel  # the API id as written (possibly dated)
    priced_model: ApiModel  # the undated model whose prices and cache apply
    long_context: bool

    @property
    def api_id(self) -> str:
        """Canonical API id: the key for prices and for the cache tracker."""
        return self.priced_model.api_id


def session_api_models(model_map: Mapping[str, Any] | None) -> dict[str, str]:
    """Picker id -> API id, from a session's stored map ({picker id: {"apiModel", ...}})."""
    flat: dict[str, str] = {}
    for picker_id, entry in (model_map or {}).items():
        api_id = entry.get("apiModel") if isinstance(entry, Mapping) else entry
        if isinstance(api_id, str) and api_id:
            flat[picker_id] = api_id
    return flat


def _mapped(resolved: ResolvedModel, model_id: str) -> ResolvedModel:
    # The API model the session's agent names for a picker id; `[1m]` still asks for the 1M window.
    return dataclasses.replace(resolved, model_id=model_id, alias=model_id, long_context=model_id.endswith("[1m]"))


def model_resolve(*, model_id: str, at: datetime, session_map: Mapping[str, str] | None = None) -> ResolvedModel:
    """Resolve a picker id (`haiku`, `opus[1m]`, ...) or an API id, dated or not.

    `session_map` (picker id -> API id, `session_api_models`) is what the session's own agent
    said a picker id means; it wins over the catalog's dated alias table, which is only the
    fallback before the agent has said anything (or when it names a model the catalog lacks).
    """
    api_id = (session_map or {}).get(model_id)
    if api_id and api_id != model_id:
        try:
            return _mapped(model_resolve(model_id=api_id, at=at), model_id)
        except UnknownModel:
            pass
    alias = (
        ModelAlias.objects.select_related("api_model__canonical")
        .filter(alias=model_id, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )
    if alias is None:  # before the first mapping: the first mapping is the best we know
        alias = (
            ModelAlias.objects.select_related("api_model__canonical")
            .filter(alias=model_id)
            .order_by("effective_from")
            .first()
        )
    if alias is not None:
        api_model = alias.api_model
        return ResolvedModel(model_id, model_id, api_model, api_model.priced_model, alias.long_context)
    api_model = ApiModel.objects.select_related("canonical").filter(api_id=model_id).first()
    if api_model is None:
        # A dated snapshot we have not listed yet bills as its undated model.
        match = _DATED_SUFFIX.match(model_id)
        if match:
            api_model = ApiModel.objects.select_related("canonical").filter(api_id=match["base"]).first()
    if api_model is None:
        raise UnknownModel(f"unknown model {model_id!r}")
    return ResolvedModel(model_id, None, api_model, api_model.priced_model, False)


def price_version_for(*, api_model: ApiModel | str, at: datetime) -> PriceVersion:
    """The price version in force at `at` (latest `effective_from <= at`).

    A request dated before a model's first version is billed at that first version: the
    catalog's first date is the earliest we can vouch for, not a time with no prices.
    """
    if isinstance(api_model, str):
        found = ApiModel.objects.select_related("canonical").filter(api_id=api_model).first()
        if found is None:
            raise UnknownModel(f"unknown model {api_model!r}")
        api_model = found
    priced = api_model.priced_model
    versions = PriceVersion.objects.select_related("api_model").filter(api_model=priced)
    version = versions.filter(effective_from__lte=at).order_by("-effective_from").first()
    if version is None:
        version = versions.order_by("effective_from").first()
    if version is None:
        raise NoPriceVersion(f"no prices for {priced.api_id}")
    return version


@dataclass(frozen=True, slots=True)
class PricedModel:
    resolved: ResolvedModel
    version: PriceVersion
    prices: Prices


# The catalog changes a few times a year and every quote reads it twice. Each process keeps
# what it read for CATALOG_CACHE_SECONDS (catalog writes here clear it at once; other
# processes see an edit within that time). Prices are not per-user state.
CATALOG_CACHE_SECONDS = 60.0
# Keyed by (id, UTC day): what a picker id means is dated (the catalog's aliases change on day
# boundaries), so a quote or an import at another date resolves it afresh.
_catalog_cache: dict[tuple[str, date], tuple[float, ResolvedModel, list[PriceVersion]]] = {}
_prices_cache: dict[int, Prices] = {}


def catalog_cache_clear(**_kwargs) -> None:
    _catalog_cache.clear()
    _prices_cache.clear()


def model_priced(*, model_id: str, at: datetime, session_map: Mapping[str, str] | None = None) -> PricedModel:
    """`model_resolve` + `price_version_for` + `prices_from_version`, from the per-process cache
    (`session_map` as in `model_resolve`)."""
    api_id = (session_map or {}).get(model_id)
    if api_id and api_id != model_id:
        try:
            priced = model_priced(model_id=api_id, at=at)
        except (UnknownModel, NoPriceVersion):
            pass
        else:
            return PricedModel(_mapped(priced.resolved, model_id), priced.version, priced.prices)
    now = time.monotonic()
    key = (model_id, at.astimezone(UTC).date())
    cached = _catalog_cache.get(key)
    if cached is None or now - cached[0] > CATALOG_CACHE_SECONDS:
        resolved = model_resolve(model_id=model_id, at=at)
        versions = list(
            PriceVersion.objects.select_related("api_model")
            .filter(api_model=resolved.priced_model)
            .order_by("effective_from")
        )
        if not versions:
            raise NoPriceVersion(f"no prices for {resolved.api_id}")
        cached = (now, resolved, versions)
        _catalog_cache[key] = cached
    _, resolved, versions = cached
    # The version in force at `at`; before the first one, the first (as price_version_for).
    version = versions[0]
    for candidate in versions:
        if candidate.effective_from <= at:
            version = candidate
    prices = _prices_cache.get(version.pk)
    if prices is None:
        prices = _prices_cache[version.pk] = prices_from_version(version)
    return PricedModel(resolved, version, prices)

from datetime import UTC, datetime

import pytest

from billing.catalog.price_snapshots import prices_make

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


def _p(api_model, family, i, w5, w1, r, o, minimum, **kw):
    return prices_make(
        api_model=api_model, label=f"{api_model}@test", family=family, input=i, write_5m=w5, write_1h=w1,
        read=r, output=o, min_cacheable_tokens=minimum, **kw,
    )  # fmt: skip


HAIKU_45 = _p("claude-haiku-4-5", "haiku", "1", "1.25", "2", "0.10", "5", 4096)
HAIKU_55 = _p(
    "claude-haiku-5-5", "haiku", "0.10", "0.125", "0.20", "0.01", "0.50", None,
    long_context_threshold=100_000,
    long_context={"input": "0.50", "write_5m": "0.625", "write_1h": "1.00", "read": "0.05", "output": "2.50"},
    tokenizer_family="haiku-5.5", tokenizer_ratio_high="1.30", geo_multiplier="1.1",
)  # fmt: skip
SONNET_46 = _p("claude-sonnet-4-6", "sonnet", "3", "3.75", "6", "0.30", "15", 1024, geo_multiplier="1.1")
OPUS_46 = _p("claude-opus-4-6", "opus", "5", "6.25", "10", "0.50", "25", 4096, geo_multiplier="1.1")
OPUS_47 = _p(
    "claude-opus-4-7", "opus", "5", "6.25", "10", "0.50", "25", 2048,
    tokenizer_family="claude-2026", tokenizer_ratio_high="1.35", geo_multiplier="1.1",
)  # fmt: skip


@pytest.fixture
def now():
    return NOW

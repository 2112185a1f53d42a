"""The price catalog: API models, the picker's aliases, and dated price versions.

Prices are stored as USD per million tokens for every class (not as multipliers of
the input price) because that is how the pricing page states them and because some
models do not follow the usual 1.25x / 2x / 0.1x ratios. Every edit is kept in
history: a quote or ledger row names the version label it was made under, and the
history shows what that label meant at the time.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

PRICE_FIELD = {"max_digits": 12, "decimal_places": 6}


class ModelFamily(models.TextChoices):
    HAIKU = "haiku", "Haiku"
    SONNET = "sonnet", "Sonnet"
    OPUS = "opus", "Opus"
    FABLE = "fable", "Fable"


class ApiModel(models.Model):
    """One model id the Messages API accepts, e.g. `claude-haiku-4-5`.

    Dated ids (`claude-haiku-4-5-20251001`) point at their undated `canonical` model and
    share its prices and tokenizer.
    """

    api_id = models.CharField(max_length=100, unique=True)
    display_name = models.CharField(max_length=100)
    family = models.CharField(max_length=16, choices=ModelFamily.choices)
    canonical = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="dated_ids",
        help_text="For a dated id: the undated model whose prices apply.",
    )
    tokenizer_family = models.CharField(
        max_length=32,
        default="legacy",
        help_text="Models with the same tokenizer count the same text identically.",
    )
    # Token count of the same text relative to the legacy tokenizer, as a range
    # (e.g. 1.00-1.35 for Opus 4.7 and later). Used to estimate a prefix in another model's tokens.
    tokenizer_ratio_low = models.DecimalField(max_digits=5, decimal_places=3, default=Decimal(1))
    tokenizer_ratio_high = models.DecimalField(max_digits=5, decimal_places=3, default=Decimal(1))
    context_window = models.PositiveIntegerField(default=200_000)
    long_context_window = models.PositiveIntegerField(
        null=True, blank=True, help_text="Context window with the 1M option, where the model has one."
    )
    notes = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["api_id"]

    def __str__(self) -> str:
        return self.api_id

    def clean(self) -> None:
        if self.tokenizer_ratio_low > self.tokenizer_ratio_high:
            raise ValidationError("tokenizer_ratio_low must not exceed tokenizer_ratio_high")
        if self.canonical_id is not None and self.canonical_id == self.pk:
            raise ValidationError("a model cannot be its own canonical model")

    @property
    def priced_model(self) -> "ApiModel":
        return self.canonical if self.canonical_id else self


class ModelAlias(models.Model):
    """The picker's model id (`haiku`, `sonnet[1m]`, ...) and the API model it meant from a date on."""

    alias = models.CharField(max_length=32)
    api_model = models.ForeignKey(ApiModel, on_delete=models.PROTECT, related_name="aliases")
    effective_from = models.DateTimeField()
    long_context = models.BooleanField(default=False, help_text="The `[1m]` variants: 1M context window.")
    notes = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["alias", "-effective_from"]
        verbose_name_plural = "model aliases"
        constraints = [
            models.UniqueConstraint(fields=["alias", "effective_from"], name="billing_alias_unique_from"),
        ]

    def __str__(self) -> str:
        return f"{self.alias} -> {self.api_model.api_id} from {self.effective_from:%Y-%m-%d}"


class PriceVersion(models.Model):
    """Prices of one (canonical) API model from `effective_from` until the next version."""

    api_model = models.ForeignKey(ApiModel, on_delete=models.PROTECT, related_name="price_versions")
    effective_from = models.DateTimeField()
    label = models.CharField(max_length=120, unique=True, help_text="e.g. claude-sonnet-4-6@2026-02-17")
    input = models.DecimalField(**PRICE_FIELD, help_text="USD per MTok")
    output = models.DecimalField(**PRICE_FIELD, help_text="USD per MTok")
    cache_write_5m = models.DecimalField(**PRICE_FIELD, help_text="USD per MTok")
    cache_write_1h = models.DecimalField(**PRICE_FIELD, help_text="USD per MTok")
    cache_read = models.DecimalField(**PRICE_FIELD, help_text="USD per MTok")
    min_cacheable_tokens = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: not published.")
    # Long-context tier: above the threshold (total input tokens of one request) every
    # token of that request is billed at these prices.
    long_context_threshold = models.PositiveIntegerField(null=True, blank=True)
    long_context_input = models.DecimalField(**PRICE_FIELD, null=True, blank=True)
    long_context_output = models.DecimalField(**PRICE_FIELD, null=True, blank=True)
    long_context_cache_write_5m = models.DecimalField(**PRICE_FIELD, null=True, blank=True)
    long_context_cache_write_1h = models.DecimalField(**PRICE_FIELD, null=True, blank=True)
    long_context_cache_read = models.DecimalField(**PRICE_FIELD, null=True, blank=True)
    batch_multiplier = models.DecimalField(max_digits=5, decimal_places=3, default=Decimal("0.5"))
    geo_multiplier = models.DecimalField(
        max_digits=5, decimal_places=3, default=Decimal(1), help_text="US-only inference (inference_geo)."
    )
    source_url = models.URLField(max_length=300, blank=True)
    notes = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["api_model__api_id", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["api_model", "effective_from"], name="billing_price_unique_from"),
        ]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        tier = [
            self.long_context_input,
            self.long_context_output,
            self.long_context_cache_write_5m,
            self.long_context_cache_write_1h,
            self.long_context_cache_read,
        ]
        if self.long_context_threshold is not None and any(v is None for v in tier):
            raise ValidationError("a long-context threshold needs all five long-context prices")
        if self.api_model_id and self.api_model.canonical_id:
            raise ValidationError("prices belong to the canonical (undated) model")

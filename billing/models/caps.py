"""The weekly-cap estimate as configuration, the per-user cap settings and calibration,
and the weekly cap reports with their threshold alerts.

Anthropic publishes no absolute caps: every figure here is an estimate and is labelled
so wherever it shows. The unit is "API-equivalent dollars" by default (a plan's week
holds so many dollars of API usage, a token weighs its API price), and admins can
change both the units per week and the weights.
"""

from datetime import time

from django.conf import settings
from django.db import models

WEIGHT_FIELD = {"max_digits": 14, "decimal_places": 6, "help_text": "Cap units per million tokens"}


class CapPlan(models.Model):
    """Units per week for one flat-rate plan."""

    plan = models.CharField(max_length=16, unique=True, help_text="A Subscription plan: pro, max5, max20.")
    weekly_units = models.DecimalField(max_digits=14, decimal_places=4)
    label = models.CharField(max_length=32, default="estimate", help_text="Shown next to every figure.")
    notes = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["weekly_units"]
        verbose_name = "cap plan (estimate)"
        verbose_name_plural = "cap plans (estimate)"

    def __str__(self) -> str:
        return f"{self.plan}: {self.weekly_units} units/week ({self.label})"


class CapWeight(models.Model):
    """Cap units per million tokens of each class, for one model (API id or family).

    A row without a plan is the default for every plan. Lookup order: the plan's row for
    the API id, the plan's row for the family, the default row for the API id, the default
    row for the family, the default row for "*"; a model with no row at all weighs its API
    prices in force (the default unit).
    """

    plan = models.ForeignKey(
        CapPlan, null=True, blank=True, on_delete=models.CASCADE, related_name="weights", help_text="Empty: all plans."
    )
    model_key = models.CharField(max_length=100, help_text='An API id (claude-opus-4-6), a family (opus) or "*".')
    input = models.DecimalField(**WEIGHT_FIELD)
    cache_write_5m = models.DecimalField(**WEIGHT_FIELD)
    cache_write_1h = models.DecimalField(**WEIGHT_FIELD)
    cache_read = models.DecimalField(**WEIGHT_FIELD)
    output = models.DecimalField(**WEIGHT_FIELD)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["plan__plan", "model_key"]
        verbose_name = "cap weight (estimate)"
        verbose_name_plural = "cap weights (estimate)"
        constraints = [
            models.UniqueConstraint(fields=["plan", "model_key"], name="billing_cap_weight_once"),
            models.UniqueConstraint(
                fields=["model_key"], condition=models.Q(plan__isnull=True), name="billing_cap_weight_default_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan.plan if self.plan_id else 'default'} / {self.model_key}"


class ResetMode(models.TextChoices):
    FIXED = "fixed", "Fixed weekday and time (UTC)"
    ROLLING = "rolling", "Rolling 7 days"


class CapSettings(models.Model):
    """One user's week, alert hook and calibrated cap."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cap_settings")
    reset_mode = models.CharField(max_length=8, choices=ResetMode.choices, default=ResetMode.FIXED)
    reset_weekday = models.PositiveSmallIntegerField(
        default=0, choices=[(i, d) for i, d in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))]
    )
    reset_time = models.TimeField(default=time(0, 0), help_text="UTC")
    webhook_url = models.URLField(blank=True, help_text="Alerts are posted here too (JSON).")
    # Calibration from weekly rate-limit events: units burned since the week start / utilization.
    calibrated_units = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    calibrated_plan = models.CharField(max_length=16, blank=True, help_text="The plan the calibration was made on.")
    calibrated_at = models.DateTimeField(null=True, blank=True)
    calibration_events = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "cap settings"
        verbose_name_plural = "cap settings"

    def __str__(self) -> str:
        return f"cap settings of {self.user}"


class CapReport(models.Model):
    """One user's cap burn over one ISO week; one row per (user, week), sent at most once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cap_reports")
    week = models.CharField(max_length=8, help_text="ISO week, e.g. 2026-W10")
    week_start = models.DateTimeField()
    week_end = models.DateTimeField()
    plan = models.CharField(max_length=16)
    cap_units = models.DecimalField(max_digits=14, decimal_places=4)
    cap_source = models.CharField(max_length=16, help_text="configured or calibrated")
    units = models.DecimalField(max_digits=18, decimal_places=6)
    percent = models.DecimalField(max_digits=10, decimal_places=4)
    switch_units = models.DecimalField(max_digits=18, decimal_places=6)
    miss_units = models.DecimalField(max_digits=18, decimal_places=6)
    requests = models.PositiveIntegerField(default=0)
    runs_out_at = models.DateTimeField(null=True, blank=True)
    worst_sessions = models.JSONField(default=list)
    computed_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-week_start"]
        constraints = [models.UniqueConstraint(fields=["user", "week"], name="billing_cap_report_once")]

    def __str__(self) -> str:
        return f"{self.user} {self.week}: {self.percent}% (estimate)"


class CapAlert(models.Model):
    """A crossed threshold (50/80/100% of the cap), alerted at most once per user and week."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cap_alerts")
    week = models.CharField(max_length=8)
    threshold = models.PositiveSmallIntegerField()
    percent = models.DecimalField(max_digits=10, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    channels = models.JSONField(default=list, help_text="Where it went: email, webhook.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "week", "threshold"], name="billing_cap_alert_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.week} {self.threshold}%"

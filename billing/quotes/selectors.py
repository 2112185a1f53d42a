"""Reads over the switch ledger."""

from django.db.models import QuerySet

from billing.models import SwitchRecord
from billing.money import usd_str
from mk0r.timefmt import iso_z


def switch_records_for_session(*, session_pk: int) -> QuerySet[SwitchRecord]:
    return (
        SwitchRecord.objects.filter(session_id=session_pk)
        .select_related("reconciliation", "price_version_from", "price_version_to")
        .order_by("-created_at")
    )


def switch_record_json(record: SwitchRecord) -> dict:
    reconciliation = getattr(record, "reconciliation", None)
    return {
        "id": record.pk,
        "fromModelId": record.from_model_id,
        "toModelId": record.to_model_id,
        "outcome": record.outcome,
        "confirmed": record.confirmed,
        "quotedTaxUsd": usd_str(record.quoted_tax_usd),
        "actualTaxUsd": usd_str(reconciliation.actual_tax_usd) if reconciliation else None,
        "quoteErrorUsd": usd_str(reconciliation.quote_error_usd) if reconciliation else None,
        "priceVersion": {"from": record.price_version_from.label, "to": record.price_version_to.label},
        "bridgeLatencyMs": record.bridge_latency_ms,
        "errorCode": record.error_code or None,
        "createdAt": iso_z(record.created_at),
        "quote": record.quote_payload,
    }

"""Load the price catalog (billing/catalog/data.py) so a fresh database has prices."""

from django.db import migrations


def load(apps, schema_editor):
    from billing.catalog.data import catalog_sync

    catalog_sync(
        api_model_cls=apps.get_model("billing", "ApiModel"),
        model_alias_cls=apps.get_model("billing", "ModelAlias"),
        price_version_cls=apps.get_model("billing", "PriceVersion"),
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_price_catalog_and_cache_state")]

    # Reversing leaves the rows: they may already be referenced by quotes and ledgers.
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]

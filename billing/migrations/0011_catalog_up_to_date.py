"""Fable joins the model families, and the catalog is brought up to billing/catalog/data.py.

On a database loaded by 0003 from an earlier catalog this adds the dated versions (flat 1M
pricing for Sonnet 4.6 and Opus 4.6 from 2026-03-13, release dates of the 2026 models, Fable),
the dated aliases, corrects context windows and tokenizers, and deletes the placeholder-dated
versions nothing refers to. On a fresh database 0003 already loaded this catalog and it changes
nothing. Versions that quotes, ledgers or usage events refer to are never rewritten.
"""

from django.db import migrations, models


def correct(apps, schema_editor):
    from billing.catalog.data import catalog_correct

    catalog_correct(
        api_model_cls=apps.get_model("billing", "ApiModel"),
        model_alias_cls=apps.get_model("billing", "ModelAlias"),
        price_version_cls=apps.get_model("billing", "PriceVersion"),
        protected_error=models.ProtectedError,
    )


def family_field():
    return models.CharField(
        choices=[("haiku", "Haiku"), ("sonnet", "Sonnet"), ("opus", "Opus"), ("fable", "Fable")], max_length=16
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0010_switch_outcome_unknown_and_reconciled")]

    operations = [
        migrations.AlterField(model_name="apimodel", name="family", field=family_field()),
        migrations.AlterField(model_name="historicalapimodel", name="family", field=family_field()),
        # Reversing leaves the rows: they may already be referenced by quotes and ledgers.
        migrations.RunPython(correct, migrations.RunPython.noop),
    ]

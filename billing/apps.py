from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing.catalog.selectors import catalog_cache_clear

        from .models import ApiModel, ModelAlias, PriceVersion

        # A catalog edit in this process shows at once; the cache's TTL covers the others.
        for model in (ApiModel, ModelAlias, PriceVersion):
            post_save.connect(catalog_cache_clear, sender=model, dispatch_uid=f"catalog-cache-{model.__name__}-save")
            post_delete.connect(catalog_cache_clear, sender=model, dispatch_uid=f"catalog-cache-{model.__name__}-del")

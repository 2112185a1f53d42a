"""Billing models, one module per concern; import them all here so Django sees them."""

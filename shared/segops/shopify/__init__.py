"""Shopify webhooks: per-tenant secret, HMAC verification over the raw body, topic → event mapping."""

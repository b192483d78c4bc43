"""What a tenant may use: its plan (`plans`), request rate limits (`rates`) and quotas (`quotas`).

Counting lives in the cache backend (token buckets, a monthly events counter); the plan is a
control-plane document. With the cache down, limits fail open: requests are served unlimited rather
than refused (docs/operations.md).
"""

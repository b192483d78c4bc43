"""Computing segment membership (docs/design.md §6): `engine` (full and delta computes of one tenant's
segments), `runner` (per-tenant serialisation, queueing and debouncing), `handler` (the
`segment-compute` bus messages), `api` (`POST/GET /api/segments/<id>/compute/`)."""

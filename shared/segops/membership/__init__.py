"""Segment membership: versioned storage (`store`), the diff writer used by compute (`writer`),
the cached per-user lookup (`lookup`) and its HTTP function (`api`)."""

"""HTTP layer, one concern per module: `routes` (declarations), `converters` (path parameters),
`requests` (reading and parsing), `authentication`, `responses` (rendering, the one error shape),
`pointers` (validation errors), `access_log`, `app` (one function's dispatch), `openapi`."""

"""The HTTP API: plumbing (http), generic resources, special endpoints, admin, schema."""

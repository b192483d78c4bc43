"""The AI segment builder: natural language → segment DSL, grounded in the tenant's vocabulary."""

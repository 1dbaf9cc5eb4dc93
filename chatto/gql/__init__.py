"""GraphQL: schema loading, resolvers (one bindable module per type), Trio shim."""

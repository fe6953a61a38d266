"""Model adapters: the `Model` protocol, providers, the scripted model, pricing."""

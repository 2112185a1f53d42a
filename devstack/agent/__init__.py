"""A small reference ACP agent that talks to the Messages API with automatic caching."""

"""An Anthropic-compatible Messages API on loopback with real prompt-cache accounting."""

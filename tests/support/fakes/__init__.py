"""Local, protocol-faithful stand-ins for the external services herald talks to."""

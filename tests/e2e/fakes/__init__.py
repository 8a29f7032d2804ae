"""Fake upstream servers: small Starlette apps that speak the providers' wire formats."""

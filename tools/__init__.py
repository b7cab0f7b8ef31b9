"""Tooling for the aiohttp connect-timeout patch series."""

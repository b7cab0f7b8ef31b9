"""Behaviour tests of the series; a package so its modules share connect_helpers."""

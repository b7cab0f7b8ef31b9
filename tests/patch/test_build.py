"""The aiohttp under test is the pinned release with its C extensions in use."""

import importlib
import os

import aiohttp
import aiohttp.http_parser


def pinned_version() -> str:
    """The release the series is pinned to: upstream.toml's, or the caller's
    (wheel-smoke runs these tests where the project is out of reach)."""
    if "AIOHTTP_PINNED_VERSION" in os.environ:
        return os.environ["AIOHTTP_PINNED_VERSION"]
    from tools.project import load_pin

    return load_pin().version


def test_version_is_the_pinned_release() -> None:
    # A local label (3.10.10+series) is allowed: it names the patched build.
    assert aiohttp.__version__.split("+")[0] == pinned_version()


def test_c_parser_is_the_one_in_use() -> None:
    compiled = importlib.import_module("aiohttp._http_parser")
    assert compiled.__file__ is not None
    assert compiled.__file__.endswith((".so", ".pyd"))
    assert aiohttp.http_parser.HttpRequestParser is compiled.HttpRequestParser

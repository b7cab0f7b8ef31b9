"""The aiohttp under test is 3.10.10 with its C extensions in use."""

import importlib

import aiohttp
import aiohttp.http_parser


def test_version_is_the_pinned_release() -> None:
    # A local label (3.10.10+series) is allowed: it names the patched build.
    assert aiohttp.__version__.split("+")[0] == "3.10.10"


def test_c_parser_is_the_one_in_use() -> None:
    compiled = importlib.import_module("aiohttp._http_parser")
    assert compiled.__file__ is not None
    assert compiled.__file__.endswith((".so", ".pyd"))
    assert aiohttp.http_parser.HttpRequestParser is compiled.HttpRequestParser

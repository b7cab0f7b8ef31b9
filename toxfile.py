"""tox's inline plugin (tox loads toxfile.py beside tox.ini): find Python
3.9 to 3.13 wherever this machine keeps them, with no flags.

pyenv's shims answer only for the active version, so on its own tox finds
one Python and skips the others. Here tox is handed what
tools/interpreters.py finds (pyenv, setup-python's tool cache, pythonX.Y on
PATH), as if each had been given with --discover; a --discover on the
command line still wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tox.plugin import impl

from tools import interpreters

if TYPE_CHECKING:
    from tox.config.sets import ConfigSet
    from tox.session.state import State


@impl
def tox_add_core_config(core_conf: ConfigSet, state: State) -> None:
    options = state.conf.options
    if hasattr(options, "discover") and not options.discover:
        found = map(interpreters.find, interpreters.SUPPORTED)
        options.discover = [python.path for python in found if python is not None]

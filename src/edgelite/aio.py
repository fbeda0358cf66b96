"""``edgelite.aio``: the asyncio client (``await edgelite.aio.connect(url)``).

The same API as ``edgelite.connect``, awaited; see ``edgelite.client.aio``.
"""

from edgelite.client.aio import *  # noqa: F403
from edgelite.client.aio import __all__  # noqa: F401

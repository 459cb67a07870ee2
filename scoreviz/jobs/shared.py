"""The server-wide store of finished models: an LRU keyed by model id, thread-safe, bounded.

Identical configurations train once per server: a finished shareable model is put here under
its `TrainConfig.model_id`, and a job, a link or a scene that asks for that id takes it from here
(`scoreviz.ui.models.shared_models` holds the one instance of a Streamlit server).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class SharedModels:
    """Server-wide LRU of finished TrainResults keyed by model id (thread-safe, bounded)."""

    def __init__(self, max_entries: int) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, model_id: str):
        with self._lock:
            item = self._items.get(model_id)
            if item is not None:
                self._items.move_to_end(model_id)
            return item

    def put(self, model_id: str, result: Any) -> None:
        with self._lock:
            self._items[model_id] = result
            self._items.move_to_end(model_id)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def discard(self, model_id: str) -> None:
        """Forget one model (absent ids are ignored)."""
        with self._lock:
            self._items.pop(model_id, None)

    def __len__(self) -> int:
        return len(self._items)

"""Warm adapters: one per channel at its current configuration, kept by a worker process.

Building an adapter looks its kind up in the registry, decrypts the credentials and opens
an HTTP session; a delivery walks through several steps (stage, go live, confirm), so the
adapter one step built is the one the next step uses. The configuration's version is a
digest of what the adapter is made of (kind, config, the credentials' ciphertext, which is
new at every save), so a rotated secret or a moved endpoint is never served a stale adapter,
however the row was changed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

from channels.contract import ChannelAdapter
from channels.registry import adapter_class
from orchestrator.domain.hashing import canonical_json
from orchestrator.settings import Settings
from orchestrator.store.models import ChannelInstance
from orchestrator.usecases.channels import adapter_for


def config_version(row: ChannelInstance) -> str:
    """Changes whenever the channel's kind, config or credentials change."""
    made_of = canonical_json({"kind": row.kind, "config": row.config,
                              "credentials": row.credentials_encrypted})
    return hashlib.sha256(made_of).hexdigest()


@dataclass
class _Warm:
    version: str
    kind: type[ChannelAdapter]
    adapter: ChannelAdapter | None = None


class AdapterPool:
    """The warm adapters of one process (Context.adapters), keyed by channel name.

    A forked child starts empty: a connection is never shared across processes. An adapter
    that cannot be built is not kept; the error reaches the caller as it always did.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warm: dict[str, _Warm] = {}
        self._pid = os.getpid()

    def kind(self, row: ChannelInstance) -> type[ChannelAdapter]:
        """The channel's adapter class (its limits, field kinds, default rate)."""
        with self._lock:
            return self._entry(row).kind

    def adapter(self, settings: Settings, row: ChannelInstance) -> ChannelAdapter:
        """The channel's adapter, built on first use at this configuration."""
        with self._lock:
            warm = self._entry(row)
            if warm.adapter is None:
                warm.adapter = adapter_for(settings, row, warm.kind)
            return warm.adapter

    def _entry(self, row: ChannelInstance) -> _Warm:
        if self._pid != os.getpid():
            self._warm, self._pid = {}, os.getpid()
        version = config_version(row)
        warm = self._warm.get(row.name)
        if warm is None or warm.version != version:
            warm = _Warm(version, adapter_class(row.kind))
            self._warm[row.name] = warm
        return warm

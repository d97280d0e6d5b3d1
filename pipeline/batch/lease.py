"""One run at a time per output prefix: a lease file, ``<prefix>/_results/lease.json``, taken before any work
and renewed while the run lives.

Two runs on one prefix would each restore every row, both summaries would claim the work, and the later
run's stale-temp clean-up would delete the earlier run's temp files while it writes. A second run is
therefore refused while the lease is live; a lease whose run is gone is taken over: on the same host when
its process no longer exists (a kill, a crash), elsewhere when it was not renewed for ``LEASE_TTL_S``.
Object stores have no locks, so after writing its lease a run reads it back and goes on only if it is its
own: of two runs racing, at most one proceeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from pipeline.manifest import RESULTS_DIR, process_exists
from pipeline.storage import Storage, StorageError

LEASE_FILE = "lease.json"
LEASE_TTL_S = 600.0  # a lease not renewed for this long belongs to a run that is gone
RENEW_EVERY_S = 60.0


def lease_uri(storage: Storage, output: str) -> str:
    return storage.join(storage.join(output, RESULTS_DIR), LEASE_FILE)


@dataclass
class Lease:
    """This run's hold on ``output``; ``release`` (or leaving the ``with`` block) gives it back."""

    storage: Storage
    output: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _stop: threading.Event = field(default_factory=threading.Event)
    _renewer: threading.Thread | None = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def record(self) -> dict:
        return {
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "renewed": time.time(),
        }

    def write(self) -> None:
        self.storage.write_bytes(lease_uri(self.storage, self.output), json.dumps(self.record()).encode())

    def keep_renewed(self) -> None:
        """Renew the lease every RENEW_EVERY_S in a daemon thread until released."""

        def renew() -> None:
            while not self._stop.wait(RENEW_EVERY_S):
                with contextlib.suppress(StorageError):  # an outage: the next renewal tries again (TTL: 10)
                    self.write()

        self._renewer = threading.Thread(target=renew, name="patina-lease", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        try:
            held = _read(self.storage, lease_uri(self.storage, self.output))
            if held is not None and held.get("run_id") == self.run_id:
                self.storage.delete(lease_uri(self.storage, self.output))
        except StorageError:
            pass  # the lease expires by itself


def take_lease(storage: Storage, output: str) -> Lease:
    """The lease on ``output``, or a one-line ValueError naming the live run that holds it."""
    uri = lease_uri(storage, output)
    held = _read(storage, uri)
    if held is not None and _alive(held):
        raise ValueError(_refusal(output, held))
    lease = Lease(storage, output)
    lease.write()
    mine = _read(storage, uri)
    if mine is None or mine.get("run_id") != lease.run_id:  # another run wrote after us: it goes on
        raise ValueError(_refusal(output, mine or {}))
    lease.keep_renewed()
    return lease


def _read(storage: Storage, uri: str) -> dict | None:
    if not storage.exists(uri):
        return None
    try:
        held = json.loads(storage.read_bytes(uri))
    except (StorageError, ValueError):
        return None  # a lease half-written by a killed run, or removed meanwhile: nobody holds it
    return held if isinstance(held, dict) else None


def _alive(held: dict) -> bool:
    if held.get("host") == socket.gethostname() and isinstance(held.get("pid"), int):
        return process_exists(held["pid"])
    renewed = held.get("renewed")
    return isinstance(renewed, int | float) and time.time() - renewed < LEASE_TTL_S


def _refusal(output: str, held: dict) -> str:
    since = held.get("renewed")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, int | float) else "?"
    )
    return (
        f"output {output} is being written by another run (host {held.get('host', '?')}, pid "
        f"{held.get('pid', '?')}, alive at {when}); wait for it to finish, or choose another output"
    )


SETTINGS_FILE = "settings.json"
# What changes the bytes a row writes, besides the model (refuse_other_models guards that one).
RECORDED_SETTINGS = ("output_format", "fill", "masks", "tone", "tone_strength")


def check_settings(storage: Storage, output: str, settings: dict) -> None:
    """The first run on ``output`` records ``settings``; a resume with other ones is refused, since
    it would mix two kinds of output (a.jpg beside b.jpg.png, two fills) under one results manifest."""
    uri = storage.join(storage.join(output, RESULTS_DIR), SETTINGS_FILE)
    recorded = _read(storage, uri)
    if recorded is None:
        storage.write_bytes(uri, json.dumps(settings, sort_keys=True).encode())
        return
    changed = [name for name in settings if name in recorded and recorded[name] != settings[name]]
    if changed:
        was = ", ".join(f"{_option(name)} {recorded[name]}" for name in changed)
        raise ValueError(
            f"{output}: was started with {was}; resume with the same options or choose a new output prefix"
        )


def _option(name: str) -> str:
    return {"output_format": "--format", "tone_strength": "--tone-strength"}.get(name, f"--{name}")

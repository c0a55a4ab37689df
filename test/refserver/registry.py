"""The per-instance state record of spec §2.2 (section 4), kept in a JSON file."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from pydantic import BaseModel, Field

from .compat import dump, validate
from .models import now_iso


class InstanceRecord(BaseModel):
    """Spec §2.2's schema (app_id, status, pid, ws_status, launched_at, log_path) plus what
    the server needs to verify app_ready and to report how the instance ended."""

    app_id: str
    # registered|launched|running|rejected|terminating|crashed|exited; fatal: supervisord
    # gave up starting it (launch mode supervisord)
    status: str = "launched"
    # the launched wrapper (bash, or docker exec); under supervisord the program's pid
    pid: Optional[int] = None
    ws_status: str = "disconnected"
    launched_at: str = Field(default_factory=now_iso)
    log_path: Optional[str] = None
    config_path: str
    streams_count: Optional[int] = None
    process_id: Optional[int] = None  # from app_ready: the instance's own pid
    version: Optional[str] = None
    resumed: Optional[Dict[str, int]] = None  # app_ready.resumed of the latest process
    connected_at: Optional[str] = None
    connections: int = 0
    ack_error: Optional[str] = None
    exit_code: Optional[int] = None
    exited_at: Optional[str] = None
    command: Optional[List[str]] = None
    env: Dict[str, str] = Field(default_factory=dict)
    process_state: Optional[str] = None  # supervisord's statename (RUNNING, FATAL, …)
    spawn_error: Optional[str] = None  # supervisord's spawnerr of a FATAL program


class Registry:
    """Records by app_id, rewritten atomically on every change."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._records: Dict[str, InstanceRecord] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                for obj in json.load(fh):
                    rec = validate(InstanceRecord, obj)
                    # Connections did not survive the restart of this server.
                    rec.ws_status = "disconnected"
                    self._records[rec.app_id] = rec

    def get(self, app_id: str) -> Optional[InstanceRecord]:
        return self._records.get(app_id)

    def all(self) -> List[InstanceRecord]:
        return list(self._records.values())

    def put(self, rec: InstanceRecord) -> None:
        self._records[rec.app_id] = rec
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump([dump(r) for r in self._records.values()], fh, indent=1)
        os.replace(tmp, self.path)

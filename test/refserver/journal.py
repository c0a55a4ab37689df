"""Append-only record of every message an instance sent, de-duplicated by `seq`.

One JSON-lines file per instance under the data directory, so a restarted server keeps
what it recorded and the highest `seq` per process (the `execute_ack.last_seq` extension).
"""
from __future__ import annotations

import json
import os
import time
from typing import IO, Any, Dict, List, Optional, Set, Tuple


class Journal:
    """Messages per instance, in arrival order, each `seq` of a process recorded once."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self._entries: Dict[str, List[Dict[str, Any]]] = {}
        self._seen: Dict[Tuple[str, int], Set[int]] = {}
        self._files: Dict[str, IO[str]] = {}
        self.duplicates: Dict[str, int] = {}
        for name in sorted(os.listdir(directory)):
            if name.endswith(".jsonl"):
                self._load(name[:-len(".jsonl")])
            elif name.endswith(".dups"):
                with open(os.path.join(directory, name), encoding="utf-8") as fh:
                    self.duplicates[name[:-len(".dups")]] = sum(1 for _ in fh)

    def _path(self, app_id: str, ext: str = ".jsonl") -> str:
        return os.path.join(self.dir, app_id + ext)

    def _load(self, app_id: str) -> None:
        path = self._path(app_id)
        with open(path, "rb") as fh:
            data = fh.read()
        # A server killed mid-write leaves a partial last line: drop it.
        good = data[: data.rfind(b"\n") + 1]
        if len(good) != len(data):
            with open(path, "r+b") as fh:
                fh.truncate(len(good))
        entries = self._entries.setdefault(app_id, [])
        for line in good.decode("utf-8", "replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            entry["index"] = len(entries)
            entries.append(entry)
            seq, pid = entry["msg"].get("seq"), entry.get("process_id")
            if isinstance(seq, int) and isinstance(pid, int):
                self._seen.setdefault((app_id, pid), set()).add(seq)

    def record(self, app_id: str, process_id: Optional[int], msg: Dict[str, Any]) -> bool:
        """Append msg; False (and nothing recorded) when its seq was already recorded."""
        seq = msg.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool) and isinstance(process_id, int):
            seen = self._seen.setdefault((app_id, process_id), set())
            if seq in seen:
                self.duplicates[app_id] = self.duplicates.get(app_id, 0) + 1
                with open(self._path(app_id, ".dups"), "a", encoding="utf-8") as fh:
                    fh.write(f"{process_id} {seq}\n")
                return False
            seen.add(seq)
        entries = self._entries.setdefault(app_id, [])
        entry = {"index": len(entries), "received_at": time.time(), "process_id": process_id,
                 "msg": msg}
        entries.append(entry)
        fh = self._files.get(app_id)
        if fh is None:
            fh = self._files[app_id] = open(self._path(app_id), "a", encoding="utf-8")
        fh.write(json.dumps({k: v for k, v in entry.items() if k != "index"}) + "\n")
        fh.flush()  # in the kernel before anything else happens: survives SIGKILL
        return True

    def last_seq(self, app_id: str, process_id: int) -> int:
        """Highest seq recorded from this process of this instance (0 when none)."""
        seen = self._seen.get((app_id, process_id))
        return max(seen) if seen else 0

    def count(self, app_id: str) -> int:
        return len(self._entries.get(app_id, ()))

    def entries(self, app_id: str, since: int = 0) -> List[Dict[str, Any]]:
        return self._entries.get(app_id, [])[max(0, since):]

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()

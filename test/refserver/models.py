"""Pydantic models of every WebSocket message of the specification (§2.3) and its extensions.

Field names, types and optionality follow the specification's examples. Every model allows
extra fields (`compat.OpenModel`) so that a newer instance may add fields without breaking this
server; the extensions documented in docs/protocol.md (`seq`, `last_seq`, `error`,
`file_error`, `metrics`, `log`, `query_logs`/`logs`, `engine_crashed`, `engine_restarted`,
`stream_lost`, `stream_resumed`, the `live` object of a processing item) are modelled too.
"""
from __future__ import annotations

import datetime as _dt
import uuid
from typing import Dict, List, Literal, Optional, Type, Union

from pydantic import BaseModel, Field

from .compat import OpenModel, dump_json, field_default, validate


def new_request_id() -> str:
    """A fresh request id (UUID4 text), as the specification's `<UUID>`."""
    return str(uuid.uuid4())


def now_iso() -> str:
    """The current time as ISO 8601 with the local UTC offset."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class Message(OpenModel):
    """Base of every frame: a JSON object with a string `type`."""

    type: str

    def to_wire(self) -> str:
        """The JSON text frame of this message (unset optional fields left out)."""
        return dump_json(self, exclude_none=True)


class AppMessage(Message):
    """Base of app → server messages: `seq` is the de-duplication extension."""

    seq: Optional[int] = None


# ---------------------------------------------------------------- §2.3.1 execute app

class Resumed(BaseModel):
    """`app_ready.resumed`: what a relaunched instance took over from the process before it."""
    cameras: int
    files: int
    from_pid: int


class AppReady(AppMessage):
    type: Literal["app_ready"] = "app_ready"
    request_id: Optional[str] = None
    instance_id: str
    config_path: str
    process_id: int
    streams_count: int
    status: str = "ok"
    version: Optional[str] = None
    gpu_allocated: List[int] = Field(default_factory=list)
    start_time: Optional[str] = None
    resumed: Optional[Resumed] = None


class ExecuteAck(Message):
    """Server → app answer to `app_ready`: `status` is `confirmed` or `error`."""

    type: Literal["execute_ack"] = "execute_ack"
    request_id: Optional[str] = None
    instance_id: Optional[str] = None
    config_verified: bool
    streams_count_verified: Optional[bool] = None
    status: Literal["confirmed", "error"]
    timestamp: str = Field(default_factory=now_iso)
    # error only
    expected_config: Optional[str] = None
    received_config: Optional[str] = None
    error_code: Optional[str] = None
    error_message: Optional[str] = None
    # extension: highest seq recorded from this process, so it can resend the gap
    last_seq: Optional[int] = None


# ---------------------------------------------------------------- §2.3.2 start analysis

CameraType = Literal["videostream", "fileset", "file"]


class FileItem(OpenModel):
    """One entry of `init_file` or `push_file.files` (`file_type` file or videostream)."""

    file_type: Literal["file", "videostream"] = "file"
    file_id: int
    file_path: str
    file_name: str
    output_path: Optional[str] = None


class EosItem(BaseModel):
    """The special last item of a camera's file sequence."""

    file_type: Literal["eos"] = "eos"


class CameraRequest(Message):
    """The leading fields of the requests about one camera of one stream."""
    request_id: str = Field(default_factory=new_request_id)
    stream_id: int
    camera_id: int


class CameraReply(AppMessage):
    """The shape of analysis_started and analysis_interrupted."""
    request_id: Optional[str] = None
    stream_id: Optional[int] = None
    camera_id: Optional[int] = None
    status: Literal["ok", "error"]
    message: Optional[str] = None
    error_reason: Optional[str] = None


class FileEvent(AppMessage):
    """The leading fields of the events about one file."""
    request_id: Optional[str] = None
    stream_id: int
    camera_id: int
    file_id: int


class StartAnalysis(CameraRequest):
    type: Literal["start_analysis"] = "start_analysis"
    camera_type: CameraType
    camera_path: str
    camera_name: str
    output_dir: str
    init_file: Optional[FileItem] = None


class AnalysisStarted(CameraReply):
    type: Literal["analysis_started"] = "analysis_started"


# ---------------------------------------------------------------- §2.3.3 push file

class PushFile(CameraRequest):
    type: Literal["push_file"] = "push_file"
    files_count: Optional[int] = None
    files: List[Union[EosItem, FileItem]]


class PushAck(AppMessage):
    type: Literal["push_ack"] = "push_ack"
    request_id: Optional[str] = None
    stream_id: Optional[int] = None
    camera_id: Optional[int] = None
    status: Literal["ok", "error"]
    error_reason: Optional[str] = None


class ProcessingStarted(FileEvent):
    type: Literal["processing_started"] = "processing_started"
    current_file: str


class FileDone(FileEvent):
    type: Literal["file_done"] = "file_done"
    processed_file: str


class FileError(FileEvent):
    """Extension: a file that was missing, empty or undecodable; the camera goes on."""

    type: Literal["file_error"] = "file_error"
    current_file: Optional[str] = None
    error_reason: str


class StreamLost(FileEvent):
    """Extension: a live camera's stream dropped or stalled; will_retry false is followed
    by the file's file_error and the camera's analysis_complete."""

    type: Literal["stream_lost"] = "stream_lost"
    reason: str
    will_retry: bool


class StreamResumed(FileEvent):
    """Extension: a live camera's stream delivers frames again after stream_lost."""

    type: Literal["stream_resumed"] = "stream_resumed"
    down_ms: int
    attempts: int
    tracker_kept: bool


class AnalysisComplete(AppMessage):
    type: Literal["analysis_complete"] = "analysis_complete"
    request_id: Optional[str] = None
    stream_id: int
    camera_id: int
    status: str = "done"
    processed_count: int
    failed_count: Optional[int] = None  # extension
    message: Optional[str] = None


# ---------------------------------------------------------------- §2.3.4 interrupt analysis

class InterruptAnalysis(CameraRequest):
    type: Literal["interrupt_analysis"] = "interrupt_analysis"
    reason: Optional[str] = None


class AnalysisInterrupted(CameraReply):
    type: Literal["analysis_interrupted"] = "analysis_interrupted"


# ---------------------------------------------------------------- §2.3.5 terminate app

class TerminateApp(Message):
    type: Literal["terminate_app"] = "terminate_app"
    request_id: str = Field(default_factory=new_request_id)
    mode: Optional[str] = None


class AppTerminated(AppMessage):
    type: Literal["app_terminated"] = "app_terminated"
    request_id: Optional[str] = None
    status: str = "ok"
    message: Optional[str] = None


# ---------------------------------------------------------------- §2.3.6 metrics

class QueryMetrics(Message):
    type: Literal["query_metrics"] = "query_metrics"
    request_id: str = Field(default_factory=new_request_id)


class GpuMetrics(OpenModel):
    gpu_id: int
    name: Optional[str] = None
    gpu_percent: Optional[float] = None
    vram_used_mb: Optional[float] = None
    vram_total_mb: Optional[float] = None
    process_vram_mb: Optional[float] = None


class Metrics(AppMessage):
    """The reply to `query_metrics` (the spec gives the four values; the type is ours)."""

    type: Literal["metrics"] = "metrics"
    request_id: Optional[str] = None
    status: str = "ok"
    timestamp: Optional[str] = None
    cpu_percent: Optional[float] = None
    ram_mb: Optional[float] = None
    gpu_percent: Optional[float] = None
    vram_mb: Optional[float] = None
    gpus: Optional[List[GpuMetrics]] = None
    gpu_error: Optional[str] = None
    error_reason: Optional[str] = None


# ---------------------------------------------------------------- §2.3.7 analysis status

class QueryAnalysisStatus(Message):
    type: Literal["query_analysis_status"] = "query_analysis_status"
    request_id: str = Field(default_factory=new_request_id)
    stream_id: Optional[int] = None
    camera_id: Optional[int] = None


class LiveStatus(OpenModel):
    """Extension: a live source's connection in a processing item."""
    state: Literal["connecting", "playing", "reconnecting"]
    fps: float
    last_frame_age_ms: Optional[int] = None
    reconnects: int


class ProcessingFile(OpenModel):
    file_id: int
    file_name: str
    progress_pct: Optional[float] = None
    live: Optional[LiveStatus] = None  # extension: live sources only


class QueuedFile(OpenModel):
    file_id: int
    file_name: str


class CameraFiles(OpenModel):
    processing: List[ProcessingFile]
    completed_count: int
    queued_count: int
    queued: List[QueuedFile]


class CameraStatus(OpenModel):
    camera_id: int
    status: Literal["running", "queued"]
    files: CameraFiles


class StreamStatus(OpenModel):
    stream_id: int
    status: Literal["running", "idle", "error"]
    cameras: List[CameraStatus]


class AnalysisStatus(AppMessage):
    """All three shapes of the reply: `streams` (whole), `stream` (one slot), or
    `stream_id` + `camera` (one camera); `status: error` + `error_reason` on a bad query."""

    type: Literal["analysis_status"] = "analysis_status"
    request_id: Optional[str] = None
    timestamp: Optional[str] = None
    streams: Optional[List[StreamStatus]] = None
    stream: Optional[StreamStatus] = None
    stream_id: Optional[int] = None
    camera: Optional[CameraStatus] = None
    status: Optional[str] = None
    error_reason: Optional[str] = None


# ---------------------------------------------------------------- extensions

class QueryLogs(Message):
    type: Literal["query_logs"] = "query_logs"
    request_id: str = Field(default_factory=new_request_id)
    lines: Optional[int] = None
    level: Optional[str] = None


class LogLine(OpenModel):
    timestamp: Optional[str] = None
    level: str
    source: Optional[str] = None
    message: str


class Logs(AppMessage):
    type: Literal["logs"] = "logs"
    request_id: Optional[str] = None
    status: str = "ok"
    log_path: Optional[str] = None
    lines: Optional[List[LogLine]] = None
    error_reason: Optional[str] = None


class LogEvent(AppMessage):
    type: Literal["log"] = "log"
    timestamp: Optional[str] = None
    level: str
    source: Optional[str] = None
    message: str
    dropped: int = 0


class ErrorReply(AppMessage):
    type: Literal["error"] = "error"
    request_id: Optional[str] = None
    status: str = "error"
    error_code: str
    error_reason: str
    received_type: Optional[str] = None


class CameraInFlight(OpenModel):
    stream_id: int
    camera_id: int
    file_id: Optional[int] = None


class EngineCrashed(AppMessage):
    type: Literal["engine_crashed"] = "engine_crashed"
    instance_id: Optional[str] = None
    timestamp: Optional[str] = None
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    last_log_lines: List[str] = Field(default_factory=list)
    cameras_in_flight: List[CameraInFlight] = Field(default_factory=list)
    reason: Optional[str] = None
    restarting: bool = False
    restart_count: int = 0
    restarts_left: int = 0


class EngineRestarted(AppMessage):
    type: Literal["engine_restarted"] = "engine_restarted"
    instance_id: Optional[str] = None
    timestamp: Optional[str] = None
    engine_pid: int
    restart_count: int
    restarts_left: int
    ready_ms: int


#: app → server message models by `type`.
APP_MESSAGES: Dict[str, Type[AppMessage]] = {
    field_default(m, "type"): m
    for m in (AppReady, AnalysisStarted, PushAck, ProcessingStarted, FileDone, FileError,
              AnalysisComplete, AnalysisInterrupted, AppTerminated, Metrics, AnalysisStatus,
              Logs, LogEvent, ErrorReply, EngineCrashed, EngineRestarted, StreamLost,
              StreamResumed)
}

#: server → app request models by `type`.
SERVER_REQUESTS: Dict[str, Type[Message]] = {
    field_default(m, "type"): m
    for m in (StartAnalysis, PushFile, InterruptAnalysis, TerminateApp, QueryMetrics,
              QueryAnalysisStatus, QueryLogs)
}

#: Reply type expected for each request type (`error` may answer any of them).
REPLY_TYPE: Dict[str, str] = {
    "start_analysis": "analysis_started",
    "push_file": "push_ack",
    "interrupt_analysis": "analysis_interrupted",
    "terminate_app": "app_terminated",
    "query_metrics": "metrics",
    "query_analysis_status": "analysis_status",
    "query_logs": "logs",
}

#: Message types that answer a request (as opposed to events, which also carry the
#: request_id of the request that caused them).
REPLY_TYPES = frozenset(REPLY_TYPE.values()) | {"error"}


def parse_app_message(obj: dict) -> AppMessage:
    """Validate an app → server object against its model (ValueError when invalid)."""
    model = APP_MESSAGES.get(obj.get("type"))
    if model is None:
        raise ValueError(f"unknown app message type {obj.get('type')!r}")
    return validate(model, obj)

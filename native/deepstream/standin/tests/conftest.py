"""Fixtures for the DeepStream stand-in tests: the stand-in app (the real adapter and
shim on stand-in elements), clips made with gst-launch, configs in deepstream-app's
format with the [standin] switches, the per-file output reader, and the variants of the
model every test runs under."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests",
                                "integration"))
from engine_client import Engine, make_clip  # noqa: E402

LONG_FRAMES = 300

# The models of what NVIDIA's closed legacy muxer and decoder may do (README.md, "What
# each element models"): every test runs under each, its own switches on top. The
# plugin's defaults are the pessimistic reading; the sanitizer build runs them only.
VARIANTS = {
    "pessimistic": {},
    # The model before the second review: the next buffer reopens a pad at EOS, one
    # frame per pad per batch, decoders free to create.
    "optimistic": {"eos_needs_flush": 0, "frames_per_source": 1, "decoder_create_ms": 0},
    # A muxer that passes a pad's flush downstream; a pad at EOS then has to reopen on
    # the next stream-start (the adapter sees the forwarding at takeover and does not
    # flush): with eos-needs-flush as well no way of reusing a pad would lose nothing.
    "flush-forwarded": {"forward_flush": 1, "eos_needs_flush": 0},
    # A stream reset that overtakes the frames its pad has queued.
    "reset-overtakes": {"reset_in_order": 0},
}


@pytest.fixture(scope="session")
def app_bin():
    path = os.environ.get("DS_STANDIN_APP")
    if not path:
        pytest.fail("DS_STANDIN_APP is not set (run through `meson test deepstream-standin`)")
    return path


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    c = {
        "a": make_clip(d / "a.mp4", 60, width=320, height=180),
        "b": make_clip(d / "b.mp4", 45, width=320, height=180, pattern="ball"),
        "long": make_clip(d / "long.mp4", LONG_FRAMES, width=320, height=180),
        "tiny": make_clip(d / "tiny.mp4", 3, width=64, height=64),
        "fps": make_clip(d / "fps.mp4", 4000, width=160, height=90),
    }
    for i in range(5):
        c[f"part{i}"] = make_clip(d / f"part{i}.mp4", 20 + 5 * i, width=320, height=180)
    c["missing"] = str(d / "does-not-exist.mp4")
    return c


@pytest.fixture(scope="session", params=["pessimistic"] if os.environ.get(
    "DS_STANDIN_ASAN") == "1" else list(VARIANTS))
def variant(request):
    """The [standin] switches of the variant the test runs under."""
    return VARIANTS[request.param]


def uri(path):
    return "file://" + os.path.abspath(path)


def write_config(path, placeholder, slots=4, timeout_us=33333, reset_mode=1, tracker=True,
                 drop_pipeline_eos=1, **standin):
    """A deepstream-app config as shipped (configs/deepstream), plus [standin] switches."""
    lines = ["[application]", "enable-perf-measurement=0", "",
             "[tests]", "file-loop=0", "",
             "[source0]", "enable=1", "type=3", f"uri={uri(placeholder)}",
             f"num-sources={slots}", "gpu-id=0", "",
             "[streammux]", "gpu-id=0", f"batch-size={slots}",
             f"batched-push-timeout={timeout_us}", f"drop-pipeline-eos={drop_pipeline_eos}",
             "sync-inputs=0", "",
             "[tracker]", f"enable={1 if tracker else 0}", "gpu-id=0",
             f"tracking-id-reset-mode={reset_mode}", "",
             "[sink0]", "enable=1", "type=1", "sync=0", ""]
    if standin:
        lines.append("[standin]")
        lines += [f"{k.replace('_', '-')}={int(v)}" for k, v in standin.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


class StandinEngine(Engine):
    """The stand-in app with its stats file; `finish()` shuts it down and checks the exit."""

    def __init__(self, binary, config, workdir, env=None):
        self.stats_path = os.path.join(str(workdir), f"stats-{id(self)}.json")
        env = dict(env or {}, DS_STANDIN_STATS=self.stats_path)
        if asan():
            # Slow unwinding lets lsan.supp match GStreamer's load-time allocations by
            # their stack (as native/tests/integration/test_leaks.py does).
            env["ASAN_OPTIONS"] = "detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=8"
        super().__init__(binary, config, workdir, env=env)
        self.client = None

    def start(self):
        self.client = self.connect()
        return self.client

    def finish(self, dropped_at_eos=0):
        """shutdown → exit 0 (under ASan also: no leak), then the element counters. No
        buffer may have met a muxer pad still closed by an earlier EOS."""
        self.client.ok("shutdown")
        code = self.wait(timeout=60)
        assert code == 0, f"exit {code}\n{self.log()[-4000:]}"
        with open(self.stats_path) as f:
            stats = json.load(f)
        if dropped_at_eos is not None:
            assert stats["dropped_at_eos"] == dropped_at_eos, stats
        return stats


@pytest.fixture
def start(app_bin, clips, tmp_path, variant):
    """start(**config) → a connected StandinEngine; stopped after the test. The variant's
    [standin] switches apply unless the test sets its own."""
    engines = []

    def _start(env=None, **kw):
        cfg = write_config(tmp_path / f"cfg{len(engines)}.txt", clips["a"],
                           **{**variant, **kw})
        e = StandinEngine(app_bin, cfg, tmp_path, env=env)
        engines.append(e)
        e.start()
        return e

    yield _start
    for e in engines:
        e.stop()


def read_kitti(path):
    """Per-file output of the adapter: (frame, track_id, camera_frame) per line."""
    rows = []
    with open(path) as f:
        for line in f:
            x = line.split()
            assert len(x) == 21, line
            rows.append((int(x[0]), int(x[1]), int(x[18])))
    return rows


def asan():
    return os.environ.get("DS_STANDIN_ASAN") == "1"

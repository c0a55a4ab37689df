"""Fixtures: the engine binary, test clips made with gst-launch, running engines."""
import os
import shutil
import subprocess

import pytest

from engine_client import Engine, make_clip, write_config

FRAMES_A = 60
FRAMES_B = 45
FRAMES_LONG = 300


def _binary(var):
    path = os.environ.get(var)
    if not path:
        pytest.fail(f"{var} is not set (run through `make -C native test`)")
    return path


@pytest.fixture(scope="session")
def engine_bin():
    return _binary("DS_GST_ENGINE")


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    c = {
        "a": make_clip(d / "a.mp4", FRAMES_A),
        "b": make_clip(d / "b.mp4", FRAMES_B, pattern="ball"),
        "long": make_clip(d / "long.mp4", FRAMES_LONG, width=320, height=180),
    }
    # Bad inputs, one of each kind.
    c["missing"] = str(d / "does-not-exist.mp4")
    c["empty"] = str(d / "empty.mp4")
    open(c["empty"], "wb").close()
    with open(c["a"], "rb") as f:
        data = f.read()
    c["truncated"] = str(d / "truncated.mp4")  # moov is at the end: cut off
    with open(c["truncated"], "wb") as f:
        f.write(data[: len(data) // 2])
    c["random"] = str(d / "random.mp4")
    with open(c["random"], "wb") as f:
        f.write(bytes((i * 7919 + 13) % 251 for i in range(200_000)))
    c["text"] = str(d / "notes.txt")
    with open(c["text"], "w") as f:
        f.write("this is a text file, not a video\n" * 100)
    c["directory"] = str(d)
    c["audio"] = str(d / "audio.wav")
    subprocess.run(["gst-launch-1.0", "-q", "audiotestsrc", "num-buffers=20", "!",
                    "audioconvert", "!", "wavenc", "!", "filesink", f"location={c['audio']}"],
                   check=True, timeout=60)
    return c


@pytest.fixture
def config3(tmp_path):
    return write_config(tmp_path / "three.txt", 3)


@pytest.fixture
def engine(engine_bin, config3, tmp_path):
    e = Engine(engine_bin, config3, tmp_path)
    yield e
    e.stop()


@pytest.fixture
def client(engine):
    c = engine.connect()
    yield c
    c.close()


def uri(path):
    return "file://" + os.path.abspath(path)

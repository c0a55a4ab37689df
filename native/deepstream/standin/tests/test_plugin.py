"""The stand-in plugin as deepstream-app 7.1 meets it: every element it creates by name,
with every property it sets on them (g_object_set stops at the first one a class does
not have), and the guard that keeps it away from NVIDIA's real plugins. Inspected with
gst-inspect-1.0 in a throw-away registry (plain build only: the sanitizer build's plugin
needs its runtime loaded first)."""
import os
import re
import subprocess

import pytest

from conftest import asan

pytestmark = pytest.mark.skipif(asan(), reason="inspects the plain build's plugin")

# What deepstream-app 7.1 (and its apps-common bins) sets on each element it creates by
# name, on the code paths of our configs and their neighbours (deepstream_streammux.c,
# deepstream_{primary_gie,tracker,tiled_display,osd}_bin.c, deepstream_source_bin.c's
# create_uridecode_src_bin and decodebin_child_added).
APP_SETS = {
    "nvstreammux": "gpu-id nvbuf-memory-type live-source batched-push-timeout compute-hw "
                   "buffer-pool-size enable-padding width height async-process batch-size "
                   "attach-sys-ts config-file-path frame-duration "
                   "frame-num-reset-on-stream-reset sync-inputs max-latency "
                   "frame-num-reset-on-eos drop-pipeline-eos extract-sei-type5-data "
                   "num-surfaces-per-frame",
    "nvinfer": "config-file-path process-mode input-tensor-meta batch-size interval "
               "unique-id raw-output-generated-callback raw-output-generated-userdata gpu-id "
               "model-engine-file infer-on-gie-id infer-on-class-ids",
    "nvtracker": "tracker-width tracker-height gpu-id ll-config-file ll-lib-file "
                 "display-tracking-id tracking-id-reset-mode tracking-surface-type "
                 "input-tensor-meta tensor-meta-gie-id compute-hw user-meta-pool-size "
                 "sub-batches sub-batch-err-recovery-trial-cnt",
    "nvvideoconvert": "gpu-id nvbuf-memory-type copy-hw compute-hw",
    "nvmultistreamtiler": "rows columns width height gpu-id nvbuf-memory-type "
                          "buffer-pool-size compute-hw square-seq-grid show-source",
    "nvdsosd": "display-clock clock-font x-clock-offset y-clock-offset clock-color "
               "clock-font-size process-mode gpu-id display-text display-bbox display-mask "
               "hw-blend-color-attr",
    "nvv4l2decoder": "gpu-id cudadec-memtype num-extra-surfaces drop-frame-interval "
                     "extract-sei-type5-data low-latency-mode skip-frames "
                     "enable-max-performance",
}


def plugin_dir():
    return os.path.dirname(os.environ["DS_STANDIN_PLUGIN"])


def inspect(tmp_path, element, **env):
    e = dict(os.environ, GST_PLUGIN_PATH=plugin_dir(),
             GST_REGISTRY=str(tmp_path / "registry.bin"))
    e.update(env)
    return subprocess.run(["gst-inspect-1.0", element], capture_output=True, text=True,
                          env=e, timeout=60)


def properties(text):
    return set(re.findall(r"^  ([a-z][a-z0-9-]*)\s*:", text, re.M))


@pytest.mark.parametrize("element", sorted(APP_SETS))
def test_every_property_the_app_sets_exists(tmp_path, element):
    r = inspect(tmp_path, element)
    assert r.returncode == 0, r.stderr
    assert "DeepStream stand-in" in r.stdout
    missing = set(APP_SETS[element].split()) - properties(r.stdout)
    assert not missing, f"{element} lacks {sorted(missing)}"


def test_the_decoder_outranks_avdec_h264(tmp_path):
    """So uridecodebin plugs it, as it plugs NVIDIA's decoder."""
    ours = inspect(tmp_path, "nvv4l2decoder").stdout
    avdec = inspect(tmp_path, "avdec_h264").stdout
    rank = lambda text: int(re.search(r"Rank\s+.*\((\d+)\)", text).group(1))  # noqa: E731
    assert rank(ours) > rank(avdec)


def test_refuses_to_load_where_deepstream_is(tmp_path):
    root = tmp_path / "opt-nvidia-deepstream"
    root.mkdir()
    r = inspect(tmp_path, "nvstreammux", DS_STANDIN_DEEPSTREAM_ROOT=str(root))
    assert r.returncode != 0
    assert f"not loaded: {root} exists (a DeepStream installation)" in r.stderr


def test_refuses_to_load_beside_nvidias_plugins(tmp_path):
    nv = tmp_path / "nvidia-plugins"
    nv.mkdir()
    (nv / "libnvdsgst_multistream.so").write_bytes(b"")  # a name is enough to refuse
    r = inspect(tmp_path, "nvstreammux", GST_PLUGIN_PATH=f"{nv}:{plugin_dir()}")
    assert r.returncode != 0
    assert "libnvdsgst_multistream.so is on GST_PLUGIN_PATH" in r.stderr

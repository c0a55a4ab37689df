#!/usr/bin/env bash
# GPU acceptance check (README.md "First run on a GPU"): runs gpu_check.py, beside
# this script, against the patched deepstream-app inside the image, or against
# ds-gst-engine in a checkout (DeepStream-only checks skipped). Builds nothing.
#
#   gpu-check.sh [deepstream|standin|gst]  default: $ENGINE, else deepstream
#
# Environment (all optional): GPU_CHECK_OUT (folder for the table and run files,
# ./gpu-check-out), SOAK_CLIPS (files in the soak: 300 deepstream, 100 gst),
# GPU_CHECK_CONFIG (the 4-slot config), DS_ENGINE / DS_GST_ENGINE / DS_STANDIN_APP (engine
# executable), DS_STANDIN_PLUGIN_DIR (the stand-in plugin's folder),
# DS_ENGINE_WORKDIR (the engine's working directory, as the supervisor uses it),
# DS_SAMPLES (folder with sample_720p.mp4 and sample_1080p_h264.mp4), PYTHON.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kind=${1:-${ENGINE:-deepstream}}
py=${PYTHON:-python3}
args=()

case "${kind}" in
  deepstream)
    ds_root=/opt/nvidia/deepstream/deepstream
    engine=${DS_ENGINE:-/opt/ds-analysis/bin/deepstream-app-engine}
    config=${GPU_CHECK_CONFIG:-/opt/ds-analysis/configs/deepstream/ds-app-4slots.txt}
    soak=${SOAK_CLIPS:-300}
    # The supervisor's start timeout (the image sets 1800s: the first start builds the
    # TensorRT engine), as seconds.
    start_timeout=${DS_ENGINE_START_TIMEOUT:-1800s}
    start_timeout=${start_timeout%s}
    args+=(--samples "${DS_SAMPLES:-${ds_root}/samples/streams}" --start-timeout "${start_timeout}")
    ;;
  gst)
    repo=$(cd "${here}/.." && pwd)
    engine=${DS_GST_ENGINE:-${repo}/bin/ds-gst-engine}
    config=${GPU_CHECK_CONFIG:-${repo}/configs/gst/four-slots.txt}
    soak=${SOAK_CLIPS:-100}
    args+=(--start-timeout 30 --file-timeout 30)
    ;;
  standin)
    # The real adapter on the DeepStream stand-in (native/deepstream/standin), with the
    # shipped 4-slot config; only its placeholder uri is replaced (the SDK's sample clip
    # is not here).
    repo=$(cd "${here}/.." && pwd)
    engine=${DS_STANDIN_APP:-${repo}/build/native/deepstream/standin/ds-standin-app}
    out=${GPU_CHECK_OUT:-gpu-check-out}
    mkdir -p "${out}"
    placeholder=$(cd "${out}" && pwd)/standin-placeholder.mp4
    gst-launch-1.0 -q videotestsrc num-buffers=2 ! video/x-raw,format=I420,width=64,height=64 \
      ! x264enc ! h264parse ! mp4mux ! filesink location="${placeholder}"
    config=${GPU_CHECK_CONFIG:-${out}/standin-4slots.txt}
    sed "s|^uri=.*|uri=file://${placeholder}|" "${repo}/configs/deepstream/ds-app-4slots.txt" \
      > "${config}"
    # The stand-in's elements for an engine that finds its elements by a plugin scan (the
    # real patched deepstream-app built by hand, native/deepstream/standin/README.md),
    # scanned into a throw-away registry, not the machine's.
    export GST_PLUGIN_PATH=${DS_STANDIN_PLUGIN_DIR:-${repo}/build/native/deepstream/standin/plugin}${GST_PLUGIN_PATH:+:${GST_PLUGIN_PATH}}
    export GST_REGISTRY=$(cd "${out}" && pwd)/standin-registry.bin
    # RSS rises for a while as buffer pools warm up: a longer soak than gst's.
    soak=${SOAK_CLIPS:-200}
    args+=(--start-timeout 30 --file-timeout 30)
    ;;
  *)
    echo "gpu-check: unknown engine '${kind}' (deepstream, standin or gst)" >&2
    exit 2
    ;;
esac

if [[ -n "${DS_ENGINE_WORKDIR:-}" ]]; then
  args+=(--workdir "${DS_ENGINE_WORKDIR}")
fi

exec "${py}" "${here}/gpu_check.py" --kind "${kind}" --engine "${engine}" --config "${config}" \
  --out "${GPU_CHECK_OUT:-gpu-check-out}" --soak-clips "${soak}" "${args[@]}"

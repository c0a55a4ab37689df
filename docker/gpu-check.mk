# Installed as /opt/ds-analysis/Makefile (docker/Dockerfile): `make -C /opt/ds-analysis
# gpu-check` runs the GPU acceptance check against the patched app and builds nothing.
# The table and run files go to GPU_CHECK_OUT: by default into the model volume, so they
# are on the host after the container is gone.
GPU_CHECK_OUT ?= $(DS_ENGINE_WORKDIR)/gpu-check
export GPU_CHECK_OUT

.PHONY: gpu-check
gpu-check:
	bash /opt/ds-analysis/gpu-check.sh deepstream

"""The image builds the adapter from one flat folder.

docker/Dockerfile copies the shim, the slot core and the adapter by name into
deepstream-app's folder, whose stock Makefile compiles every *.c there together with
`-I./` and the SDK's include paths. So the list must hold every file that build needs,
names must be unique, and no copied file may include another by a path ("../slot/x.h"
builds here and not there).
"""
import os
import re
import shutil
import subprocess

import pytest

from test_dockerfile import instructions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NATIVE = os.path.join(REPO, "native")
# Our declarations of the SDK headers the adapter includes (the image has NVIDIA's).
SDK = os.path.join(NATIVE, "deepstream", "standin", "include")
APP_DIR = "/sources/apps/sample_apps/deepstream-app/"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def copied():
    """The native files the Dockerfile copies into deepstream-app's folder."""
    with open(os.path.join(REPO, "docker", "Dockerfile")) as f:
        text = f.read()
    out = []
    for kw, arg in instructions(text):
        words = arg.split()
        if kw == "COPY" and words and words[-1].endswith(APP_DIR):
            out += [w for w in words[:-1] if w.startswith("native/")]
    return out


def test_names_are_unique_and_present():
    files = copied()
    assert files, "no COPY into deepstream-app's folder"
    names = [os.path.basename(p) for p in files]
    assert len(names) == len(set(names)), names
    for p in files:
        assert os.path.isfile(os.path.join(REPO, p)), p


def test_shim_and_slot_core_copied_whole():
    """The adapter links the shim and the slot core: every file of both folders."""
    have = set(copied())
    for room in ("shim", "slot"):
        for name in sorted(os.listdir(os.path.join(NATIVE, room))):
            if name.endswith((".c", ".h")):
                assert f"native/{room}/{name}" in have, f"native/{room}/{name} not copied"


def test_includes_resolve_in_a_flat_folder():
    files = copied()
    names = {os.path.basename(p) for p in files}
    sdk = set(os.listdir(SDK))
    for p in files:
        with open(os.path.join(REPO, p)) as f:
            for inc in INCLUDE.findall(f.read()):
                assert "/" not in inc, f"{p}: #include \"{inc}\" names a path"
                assert inc in names or inc in sdk, f"{p}: \"{inc}\" is not copied"


def test_compiles_in_a_flat_folder(tmp_path):
    """As the stock Makefile would: every copied .c, one folder, no symbol twice."""
    cc, pkg = shutil.which("cc"), shutil.which("pkg-config")
    if cc is None or pkg is None:
        pytest.skip("no C compiler or pkg-config")
    mods = ["gstreamer-1.0", "gstreamer-video-1.0", "json-glib-1.0", "gio-unix-2.0"]
    flags = subprocess.run([pkg, "--cflags"] + mods, capture_output=True, text=True)
    if flags.returncode != 0:
        pytest.skip("pkg-config: " + flags.stderr.strip())
    for p in copied():
        shutil.copy(os.path.join(REPO, p), tmp_path)
    objs = []
    for c in sorted(n for n in os.listdir(tmp_path) if n.endswith(".c")):
        obj = str(tmp_path / (c[:-2] + ".o"))
        r = subprocess.run(
            [cc, "-std=gnu11", "-Wall", "-Werror", "-c", "-I./", "-I" + SDK,
             "-I" + os.path.join(NATIVE, "deepstream", "standin", "cuda")]
            + flags.stdout.split() + [c, "-o", obj],
            cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, f"{c}:\n{r.stderr}"
        objs.append(obj)
    nm = shutil.which("nm")
    if nm is None:
        return
    syms = subprocess.run([nm, "-g", "--defined-only"] + objs, capture_output=True,
                          text=True, check=True).stdout.split("\n")
    defined = [line.split()[2] for line in syms if len(line.split()) == 3]
    twice = sorted({s for s in defined if defined.count(s) > 1})
    assert not twice, twice

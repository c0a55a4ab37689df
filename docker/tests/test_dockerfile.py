"""The images leave no GStreamer plugin registry behind.

A plugin scan while the image is built (gst-inspect-1.0, gst-launch-1.0, anything that
calls gst_init) runs without a GPU: every DeepStream plugin fails to load there (no
libcuda.so.1, libnvcuvid.so.1) and the scan records it as failed in
~/.cache/gstreamer-1.0/registry.*.bin. GStreamer keeps such an entry until the plugin file
changes, so at run time nvstreammux, nvinfer, nvtracker … would be "no such element".
A RUN that scans must point the scan at a throw-away registry (GST_REGISTRY=…) or delete
the cache after its last scan, as NVIDIA's own install scripts do.
"""
import os
import re
import shlex

HERE = os.path.dirname(os.path.abspath(__file__))
DOCKER = os.path.dirname(HERE)

# Programs that initialise GStreamer and so scan its plugins. NVIDIA's
# user_additional_install*.sh counts as one: it installs plugins, and whether it scans
# them is not ours to see.
SCANNERS = re.compile(r"gst-(?:inspect|launch|discoverer|play|typefind|device-monitor)-1\.0"
                      r"|deepstream-app(?:-engine)?|deepstream-\w+-app|gpu-check\.sh"
                      r"|user_additional_install\w*\.sh")
CACHE = re.compile(r"^(?:/root|\$HOME|\$\{HOME[^}]*\}|~)/\.cache/gstreamer-1\.0(?:/.*)?$")
ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PREFIXES = {"!", "{", "(", "exec", "time", "sudo", "env", "then", "do", "else", "command",
            "if", "while", "until"}


def instructions(text):
    """(keyword, argument) per Dockerfile instruction, continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue  # comments, also between the lines of a continued instruction
        if not cur and not stripped:
            continue
        if stripped.endswith("\\"):
            cur += stripped[:-1] + " "
            continue
        cur += stripped
        kw, _, arg = cur.partition(" ")
        out.append((kw.upper(), arg.strip()))
        cur = ""
    return out


def split_outside_quotes(shell):
    """shell cut at &&, ||, ;, |, $( and backquotes that are not inside quotes."""
    parts, cur, quote, i = [], "", None, 0
    while i < len(shell):
        c = shell[i]
        if quote:
            quote = None if c == quote else quote
            cur += c
        elif c in "'\"":
            quote = c
            cur += c
        elif shell.startswith(("&&", "||", "$("), i):
            parts.append(cur)
            cur, i = "", i + 2
            continue
        elif c in ";|`":
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return parts


def commands(shell):
    """The simple commands of a RUN line, in order: (assignments, words)."""
    out = []
    for part in split_outside_quotes(shell):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        env = []
        while words and (ASSIGN.match(words[0]) or words[0] in PREFIXES):
            if ASSIGN.match(words[0]):
                env.append(words[0])
            words = words[1:]
        if words:
            out.append((env, words))
    return out


def is_scan(words):
    prog = os.path.basename(words[0].replace("${DS_ROOT}", "").strip("\"'"))
    if SCANNERS.fullmatch(prog):
        return True
    if prog in ("bash", "sh") and len(words) > 1 and not words[1].startswith("-"):
        return is_scan(words[1:])
    if prog == "make" and "gpu-check" in words[1:]:
        return True
    return prog.startswith("python") and any("Gst.init" in w for w in words[1:])


def throwaway(env):
    return any(e.startswith("GST_REGISTRY=") and not CACHE.match(e.split("=", 1)[1])
               for e in env)


def registry_violations(text):
    """The RUN instructions that scan plugins and leave the registry in the image."""
    bad = []
    for kw, arg in instructions(text):
        # An ENV GST_REGISTRY is no throw-away registry: it stays set in the image, so
        # the registry a build step scanned into is the one the containers read.
        if kw != "RUN":
            continue
        exported = False
        pending = False  # a scan since the cache was last cleared
        for env, words in commands(arg):
            if words[0] == "export":
                exported |= throwaway(words[1:])
                continue
            if is_scan(words) and not (exported or throwaway(env)):
                pending = True
            elif words[0] == "rm" and any(CACHE.match(w) for w in words[1:]):
                pending = False
        if pending:
            bad.append(arg[:120])
    return bad


def test_images_leave_no_registry():
    names = [n for n in sorted(os.listdir(DOCKER)) if n == "Dockerfile" or n.endswith(".Dockerfile")]
    assert "Dockerfile" in names
    for name in names:
        with open(os.path.join(DOCKER, name)) as f:
            assert registry_violations(f.read()) == [], name


def test_a_scan_that_leaves_the_registry_is_found():
    # The check the image once ended with: three scans, nothing cleared.
    text = """FROM x
RUN mkdir -p /logs \\
 && [ -x "${DS_ENGINE}" ] \\
 && for e in qtdemux h264parse splitmuxsink; do \\
      gst-inspect-1.0 "${e}" > /dev/null || { echo "FATAL: gpu-check needs ${e}" >&2; exit 1; }; \\
    done
"""
    assert len(registry_violations(text)) == 1
    assert len(registry_violations('FROM x\nRUN "${DS_ROOT}/user_additional_install.sh"\n')) == 1
    assert len(registry_violations("FROM x\nRUN deepstream-app --version-all\n")) == 1
    assert len(registry_violations("FROM x\nRUN make -C /opt/ds-analysis gpu-check\n")) == 1
    assert len(registry_violations(
        "FROM x\nRUN python3 -c 'from gi.repository import Gst; Gst.init(None)'\n")) == 1


def test_a_registry_set_by_env_is_no_throwaway():
    """ENV stays in the image: the containers read the registry the build scanned."""
    assert len(registry_violations(
        "FROM x\nENV GST_REGISTRY=/tmp/build-registry.bin\nRUN gst-inspect-1.0 qtdemux\n")) == 1


def test_clearing_before_the_scan_is_not_enough():
    text = "FROM x\nRUN rm -rf /root/.cache/gstreamer-1.0 && gst-inspect-1.0 qtdemux\n"
    assert len(registry_violations(text)) == 1


def test_a_cleared_or_throwaway_scan_passes():
    assert registry_violations(
        "FROM x\nRUN gst-inspect-1.0 qtdemux \\\n && rm -rf /root/.cache/gstreamer-1.0\n") == []
    assert registry_violations(
        'FROM x\nRUN ./user_additional_install.sh && rm -rf "$HOME/.cache/gstreamer-1.0"\n') == []
    assert registry_violations(
        "FROM x\nRUN GST_REGISTRY=/tmp/r.bin gst-inspect-1.0 qtdemux && rm /tmp/r.bin\n") == []
    assert registry_violations(
        "FROM x\nRUN export GST_REGISTRY=/tmp/r.bin; gst-inspect-1.0 qtdemux\n") == []
    # A "throw-away" registry inside the real cache is none.
    assert len(registry_violations(
        "FROM x\nRUN GST_REGISTRY=/root/.cache/gstreamer-1.0/r.bin gst-inspect-1.0 x\n")) == 1


def test_names_that_are_not_runs_are_not_scans():
    text = """FROM x
# gst-inspect-1.0 in a comment
COPY --from=s /out/ds-supervisor /usr/local/bin/deepstream-app
RUN install -D -m 0755 deepstream-app /opt/ds-analysis/bin/deepstream-app-engine \\
 && [ "$(command -v deepstream-app)" = /usr/local/bin/deepstream-app ] \\
 && bash -n /opt/ds-analysis/gpu-check.sh \\
 && cp docker/gpu-check.sh /opt/
"""
    assert registry_violations(text) == []

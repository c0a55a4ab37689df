"""The real deepstream-app adapter and shim, driven over the control socket, on stand-in
elements that model DeepStream 7.1's runtime semantics (../README.md). Real H.264 files
decoded by GStreamer; under ASan/LSan in the sanitizer build."""
import os
import statistics
import time

import pytest

from conftest import LONG_FRAMES, StandinEngine, asan, read_kitti, uri, write_config

MAX_LOOP_GAP_MS = 50


def play(c, slot, file_id, path, out, new_camera=False):
    c.ok("play", slot=slot, file_id=file_id, uri=uri(path), new_camera=new_camera,
         output_path=str(out))


def done(c, slot, file_id, timeout=60):
    ev = c.wait_file_end(slot, file_id, timeout=timeout)
    assert ev["event"] == "file_done", ev
    return ev


def play_camera(c, slot, first_id, paths, outdir, tag):
    """Plays paths back-to-back as one camera; returns [(file_done, rows)]."""
    results = []
    for i, p in enumerate(paths):
        out = outdir / f"{tag}-{i}.txt"
        play(c, slot, first_id + i, p, out, new_camera=(i == 0))
        ev = done(c, slot, first_id + i)
        results.append((ev, read_kitti(out)))
    return results


def ids(rows):
    return {r[1] for r in rows}


def test_hello_and_ready(start):
    e = start()
    h = e.client.ok("hello")
    assert h["engine"] == "deepstream" and h["streams"] == 4 and h["gpu_ids"] == [0]
    e.finish()


@pytest.mark.parametrize("drop_pipeline_eos", [1, 0], ids=["as-shipped", "eos-not-dropped"])
def test_ids_continue_across_the_files_of_a_camera(start, clips, tmp_path, drop_pipeline_eos):
    """Also with a config that lets the muxer end the pipeline once every pad is at EOS
    (every idle slot's is): the adapter sets drop-pipeline-eos itself."""
    e = start(drop_pipeline_eos=drop_pipeline_eos)
    parts = [clips[f"part{i}"] for i in range(5)]
    res = play_camera(e.client, 0, 1, parts, tmp_path, "cam")
    camera_frames = []
    for i, (ev, rows) in enumerate(res):
        assert ev["frames"] == 20 + 5 * i == len(rows)      # one object per frame
        assert [r[0] for r in rows] == list(range(len(rows)))  # file frame index restarts
        camera_frames += [r[2] for r in rows]
    assert camera_frames == list(range(len(camera_frames)))  # camera_frame continuous
    assert len(set().union(*(ids(rows) for _, rows in res))) == 1  # one track, all files
    assert res[-1][0]["camera_frames"] == len(camera_frames)
    stats = e.finish()
    assert stats["decoder_starts"] == 4 + 5  # the placeholders', then one per file


def test_new_camera_gets_new_ids_and_leaves_other_slots_alone(start, clips, tmp_path):
    e = start()
    c = e.client
    play(c, 1, 100, clips["long"], tmp_path / "s1.txt", new_camera=True)
    a = play_camera(c, 0, 1, [clips["a"]], tmp_path, "a")
    b = play_camera(c, 0, 10, [clips["b"], clips["a"]], tmp_path, "b")
    s1 = done(c, 1, 100)
    rows1 = read_kitti(tmp_path / "s1.txt")
    assert s1["frames"] == LONG_FRAMES == len(rows1)
    assert len(ids(rows1)) == 1                        # slot 1's track never reset
    ids_a, ids_b = ids(a[0][1]), ids(b[0][1]) | ids(b[1][1])
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b
    assert min(ids_b) > max(ids_a | ids(rows1))        # new IDs, never reused
    assert [r[2] for r in b[0][1] + b[1][1]] == list(range(45 + 60))
    assert "stream reset not seen" not in e.log()
    e.finish()


@pytest.mark.parametrize("reset_in_order", [1, 0], ids=["reset-in-order", "reset-overtakes"])
def test_stop_mid_file_leaves_no_foreign_lines(start, clips, tmp_path, reset_in_order):
    e = start(reset_in_order=reset_in_order, hold_ms=30)
    c = e.client
    play(c, 0, 1, clips["long"], tmp_path / "long.txt", new_camera=True)
    play(c, 1, 50, clips["long"], tmp_path / "other.txt", new_camera=True)
    deadline = time.monotonic() + 30
    while c.ok("progress")["slots"][0]["frames"] < 40:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stop = c.ok("stop", slot=0)
    assert stop["was_playing"] and stop["file_id"] == 1
    res = play_camera(c, 0, 2, [clips["b"]], tmp_path, "next")
    ev, rows = res[0]
    assert ev["frames"] == 45 == len(rows)
    assert [r[0] for r in rows] == list(range(45)) == [r[2] for r in rows]
    assert len(ids(rows)) == 1 and ids(rows) != ids(read_kitti(tmp_path / "long.txt"))
    other = done(c, 1, 50)
    assert other["frames"] == LONG_FRAMES == len(read_kitti(tmp_path / "other.txt"))
    e.finish()


def test_a_reset_the_stop_flushed_away_does_not_hold_the_next_camera_back(
        start, clips, tmp_path, variant):
    """A stop right after a new camera's first frame: its stream reset may still be in the
    muxer pad's queue, where the stop's flush drops it (here the muxer spends 100 ms on
    each batch while slot 1 keeps it busy). The next camera on the slot must not wait
    for that reset: all its frames, its own track."""
    e = start(batch_copy_ms=100)
    c = e.client
    play(c, 1, 100, clips["fps"], tmp_path / "busy.txt", new_camera=True)
    stopped_ids, stops = set(), 3
    for k in range(stops):
        play(c, 0, 10 * k + 1, clips["long"], tmp_path / f"stopped{k}.txt", new_camera=True)
        c.wait_event(lambda ev: ev.get("event") == "file_started"
                     and ev.get("file_id") == 10 * k + 1)
        c.ok("stop", slot=0)
        stopped_ids |= ids(read_kitti(tmp_path / f"stopped{k}.txt"))
        [(ev, rows)] = play_camera(c, 0, 10 * k + 2, [clips["b"]], tmp_path, f"next{k}")
        assert ev["frames"] == 45 == len(rows)
        assert [r[0] for r in rows] == list(range(45)) == [r[2] for r in rows]
        assert len(ids(rows)) == 1 and not ids(rows) & stopped_ids
        stopped_ids |= ids(rows)
    c.ok("stop", slot=1)
    stats = e.finish()
    # Without a flush that met a queued reset the test proves nothing: a reset that
    # overtakes the queue, or a muxer whose pads the adapter never flushes, has none.
    if variant.get("reset_in_order", 1) and not variant.get("forward_flush", 0):
        print(f"resets flushed: {stats['resets_flushed']} of {stops}")
        assert stats["resets_flushed"] >= 1, stats


def switch_window_gaps(stats, t0_ns, t1_ns):
    """Main-loop gaps (ms) in the window, less the time the main thread waited for a CPU
    (a loaded machine's share, not the adapter's)."""
    return [(gap - waited) / 1e6 for end, gap, waited in stats["loop_gaps"]
            if t0_ns <= end <= t1_ns]


def test_no_main_loop_stall_at_switches_while_frames_are_held(start, clips, tmp_path):
    """The sink keeps each batch (and its decoder surfaces) for 200 ms; a decoder that
    waits for its surfaces when it stops must not stall the main loop."""
    e = start(hold_ms=200)
    c = e.client
    t0 = time.monotonic_ns()
    play(c, 1, 100, clips["long"], tmp_path / "s1.txt", new_camera=True)
    res = play_camera(c, 0, 1, [clips[f"part{i}"] for i in range(4)], tmp_path, "cam")
    play(c, 0, 9, clips["long"], tmp_path / "stopped.txt", new_camera=True)
    c.wait_event(lambda ev: ev.get("event") == "file_started" and ev.get("file_id") == 9)
    c.ok("stop", slot=0)
    res += play_camera(c, 0, 10, [clips["b"]], tmp_path, "after")
    done(c, 1, 100)
    t1 = time.monotonic_ns()
    for ev, rows in res:
        assert ev["frames"] == len(rows)
    stats = e.finish()
    gaps = switch_window_gaps(stats, t0, t1)
    print(f"main-loop gaps over 10 ms during the switches: {sorted(gaps)[-5:]} ms; "
          f"longest surface wait {stats['surface_wait_max_ns'] / 1e6:.0f} ms")
    if not asan():  # under ASan every state change is several times slower: leaks only
        assert max(gaps, default=0) < MAX_LOOP_GAP_MS


def test_poisoned_surfaces_are_never_read(start, clips, tmp_path):
    """A decoder that takes its surfaces back at once when it stops: no frame of a file
    may still be read by the muxer or the tracker after its slot stopped."""
    e = start(poison=1, hold_ms=50)
    c = e.client
    for slot in (0, 1):
        play(c, slot, slot * 10, clips["part0"], tmp_path / f"{slot}-0.txt", new_camera=True)
    for i in range(1, 4):
        for slot in (0, 1):
            done(c, slot, slot * 10 + i - 1)
            play(c, slot, slot * 10 + i, clips[f"part{i}"], tmp_path / f"{slot}-{i}.txt")
    for slot in (0, 1):
        done(c, slot, slot * 10 + 3)
        for i in range(4):
            assert len(read_kitti(tmp_path / f"{slot}-{i}.txt")) == 20 + 5 * i
    stats = e.finish()
    assert stats["poisoned_reads"] == 0


def test_natural_switches_survive_a_muxer_that_forwards_flushes(start, clips, tmp_path):
    """If the legacy muxer passed a pad's flush downstream it would flush every slot's
    frames in flight: the adapter sees it at takeover and then switches files without
    flushing the pad (which the muxer must then reopen on the next stream-start)."""
    e = start(forward_flush=1, eos_needs_flush=0)
    c = e.client
    play(c, 1, 100, clips["long"], tmp_path / "s1.txt", new_camera=True)
    res = play_camera(c, 0, 1, [clips[f"part{i}"] for i in range(5)], tmp_path, "cam")
    s1 = done(c, 1, 100)
    assert s1["frames"] == LONG_FRAMES == len(read_kitti(tmp_path / "s1.txt"))
    for ev, rows in res:
        assert ev["frames"] == len(rows)
    stats = e.finish()
    assert stats["flushes_forwarded"] <= 4  # the takeover's, one per slot; none at switches
    assert "the muxer passes a per-pad flush downstream" in e.log()


def test_a_muxer_that_forwards_flushes_and_needs_them_fails_loudly(app_bin, clips, tmp_path):
    """The one combination no way of reusing a pad survives (NVIDIA's own runtime source
    resets flush muxer pads while other sources play, so the legacy muxer is taken not to
    be like this): the adapter says so at takeover, and a file whose frames never come
    out fails with that reason instead of passing with an empty output (here every
    file: the takeover left every pad at EOS)."""
    cfg = write_config(tmp_path / "c.txt", clips["a"], forward_flush=1, eos_needs_flush=1)
    e = StandinEngine(app_bin, cfg, tmp_path)
    try:
        c = e.start()
        for i in range(2):
            play(c, 0, i, clips[f"part{i}"], tmp_path / f"{i}.txt", new_camera=i == 0)
            ev = c.wait_file_end(0, i, timeout=30)
            assert ev["event"] == "file_error", ev
            assert f"only 0 of {20 + 5 * i} frames came out of the pipeline" in ev["error"]
        assert "the muxer passes a per-pad flush downstream" in e.log()
        stats = e.finish(dropped_at_eos=None)
        assert stats["dropped_at_eos"] == 20 + 25
    finally:
        e.stop()


@pytest.mark.parametrize("frames_per_source, at_least, at_most", [(0, 3.5, 4), (1, 1, 1)],
                         ids=["legacy-rule", "one-per-pad"])
def test_one_busy_source_fills_its_share_of_a_batch(start, clips, tmp_path, frames_per_source,
                                                     at_least, at_most):
    """The legacy muxer's documented rule: about batch-size ÷ sources in the batch frames
    of each; with 1 of 4 slots busy (the idle ones at EOS) that is 4 frames of one pad."""
    e = start(frames_per_source=frames_per_source)
    ev = play_camera(e.client, 0, 1, [clips["long"]], tmp_path, "busy")[0][0]
    assert ev["frames"] == LONG_FRAMES
    stats = e.finish()
    per_batch = stats["frames"] / stats["batches"]
    print(f"frames-per-source={frames_per_source}: {stats['frames']} frames in "
          f"{stats['batches']} batches ({per_batch:.2f} a batch)")
    assert at_least <= per_batch <= at_most


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_rss_and_fds_flat_over_1000_switches(start, clips, tmp_path):
    """RSS and fds measured with every slot idle and its sources down."""
    e = start()
    c = e.client
    # Under ASan the run is about leaks at exit (checked by finish()), not RSS: shorter.
    switches, warmup = (300, 100) if asan() else (1000, 200)
    played = {s: 0 for s in range(4)}

    def play_next(s):
        play(c, s, s * 10000 + played[s], clips["tiny"], tmp_path / f"soak-{s}.txt",
             new_camera=(played[s] == 0))
        played[s] += 1

    def run_until(total):
        for s in range(4):
            play_next(s)
        busy, n = 4, sum(played.values())
        while busy > 0:
            ev = c.wait_event(lambda x: x.get("event") in ("file_done", "file_error"),
                              timeout=60)
            assert ev["event"] == "file_done" and ev["frames"] == 3, ev
            busy -= 1
            if n < total:
                play_next(ev["slot"])
                busy += 1
                n += 1
        return rss_kb(e.proc.pid)

    def quiet_fds(at_most=None, seconds=2.0):
        """The fd count once the last sources are down (they go down off the main loop,
        after file_done): the lowest seen within `seconds`, or as soon as ≤ at_most."""
        low, deadline = fd_count(e.proc.pid), time.monotonic() + seconds
        while time.monotonic() < deadline and (at_most is None or low > at_most):
            time.sleep(0.02)
            low = min(low, fd_count(e.proc.pid))
        return low

    # RSS moves in a band of a few MB as decoders and pools come and go with the files
    # (flat over 4,000 switches): sampled with every slot idle after each block of 100
    # switches, a leak shows as the second half's peak climbing above the first half's.
    rss, fd0 = [], None
    for total in range(100, switches + 1, 100):
        rss.append(run_until(total))
        if total == warmup:
            fd0 = quiet_fds()
    fd1 = quiet_fds(at_most=fd0, seconds=5.0)
    half = len(rss) // 2
    peak1, peak2 = max(rss[:half]), max(rss[half:])
    print(f"RSS peak {peak1} → {peak2} kB (samples {rss}), fds {fd0} → {fd1} over "
          f"{switches} switches")
    assert fd1 <= fd0
    if not asan():  # ASan's quarantine grows RSS by design
        assert peak2 - peak1 < 8 * 1024
    e.finish()


def slot0_fps(e, clip, tmp_path, tag):
    c = e.client
    play(c, 0, 1, clip, tmp_path / f"{tag}.txt", new_camera=True)
    started = c.wait_event(lambda ev: ev.get("event") == "file_started")
    ev = done(c, 0, 1)
    return (ev["frames"] - 1) / ((ev["mono_ns"] - started["mono_ns"]) / 1e9)


@pytest.mark.skipif(asan(), reason="a throughput ratio, measured in the plain build")
def test_idle_slots_do_not_throttle_the_busy_one(start, clips, tmp_path):
    """Idle slots never hold the busy one's batches: with 1 of 4 slots busy (4,000 frames),
    next to nothing waits out batched-push-timeout (throttled, every batch would), and
    the busy slot's rate is that of a muxer with its pad only, within what a shared
    machine's noise allows (medians of 7 pairs range 0.77-1.16 there; make bench
    reports the ratio; the throttle this guards against measured 0.01)."""
    rates = {"1 of 4": [], "1 pad": []}
    for run in range(7):  # alternated, a median of the pairs' ratios: the machine is shared
        for name, slots in (("1 of 4", 4), ("1 pad", 1)):
            e = start(slots=slots)
            rates[name].append(slot0_fps(e, clips["fps"], tmp_path, f"{name}-{run}"))
            stats = e.finish()
            assert stats["timeout_pushes"] * 50 <= stats["batches"], (name, stats)
    ratio = statistics.median(a / b for a, b in zip(rates["1 of 4"], rates["1 pad"]))
    print(f"slot 0 fps, medians of 7: 1 of 4 busy {statistics.median(rates['1 of 4']):.0f}, "
          f"one pad {statistics.median(rates['1 pad']):.0f}; median ratio {ratio:.2f}")
    assert ratio >= 0.6


@pytest.mark.parametrize("env, config, why", [
    ({"USE_NEW_NVSTREAMMUX": "yes"}, {}, "USE_NEW_NVSTREAMMUX"),
    ({}, {"reset_mode": 0}, "tracking-id-reset-mode"),
], ids=["new-nvstreammux", "tracker-reset-mode-0"])
def test_unsupported_setups_are_refused(app_bin, clips, tmp_path, env, config, why):
    from conftest import StandinEngine, write_config
    e = StandinEngine(app_bin, write_config(tmp_path / "c.txt", clips["a"], **config), tmp_path,
                      env=env)
    try:
        assert e.wait(timeout=30) != 0
        assert why in e.log()
    finally:
        e.stop()


def test_missing_file_then_next_camera(start, clips, tmp_path):
    e = start()
    c = e.client
    play(c, 0, 1, clips["missing"], tmp_path / "m.txt", new_camera=True)
    ev = c.wait_file_end(0, 1)
    assert ev["event"] == "file_error"
    res = play_camera(c, 0, 2, [clips["b"]], tmp_path, "b")
    assert res[0][0]["frames"] == 45 == len(res[0][1])
    e.finish()

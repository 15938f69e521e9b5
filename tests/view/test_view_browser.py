"""The viewer's pages in a real headless Chromium (Debian's ``chromium``, driven by
Playwright): counts, thumbnails that load, filters, record pages, damage, escaping,
screenshots; on a dataset folder, a TFDS folder and an S3 bucket (moto's server).

Skipped when /usr/bin/chromium or Playwright is missing, except in CI (``CI=true``), where
that is a failure: ``.ci/run`` installs the browser."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tfrecord_tools.format.tfds import TFDS_INFO

from .test_view_data import (
    CLASSES,
    XSS_CLASS,
    XSS_FILE,
    as_tfds_folder,
    damage_record,
    serving,
    truth,
)
from .test_view_data import hostile as hostile  # fixtures
from .test_view_data import shapes as shapes

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000  # readiness bound: generous, never a fixed sleep


def _missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} missing: apt-get install chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright missing: pip install -e '.[test]'"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One Chromium for the module, with a fresh profile; each test opens its own page."""
    why = _missing()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests must run in CI: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser):
    """A new tab; a dialog (alert) opened by any page fails the test."""
    tab = browser.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    yield tab
    tab.close()
    assert dialogs == [], f"a page ran a script: {dialogs}"


def _open(page, url: str) -> None:
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, (url, response and response.status)


def _thumbnails_loaded(page) -> list[dict]:
    """Every tile's image (waiting for all to finish), its natural size and its caption."""
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=WAIT_MS)
    return page.eval_on_selector_all(
        "figure.tile",
        """tiles => tiles.map(t => {
            const img = t.querySelector('img');
            return {split: +t.dataset.split, shard: +t.dataset.shard, index: +t.dataset.index,
                    label: t.dataset.label, damaged: t.dataset.damaged === '1',
                    cls: t.querySelector('.class').textContent,
                    width: img ? img.naturalWidth : null, height: img ? img.naturalHeight : null};
        })""",
    )


def _expected_class(features: dict) -> str:
    return features["image/class/text"][1][0].decode()


# --------------------------------------------------------------------------- a dataset of ours


def test_overview_counts_equal_the_manifest(page, shapes):
    manifest = json.loads((shapes / "dataset.json").read_text())
    with serving(shapes) as url:
        _open(page, url + "/")
        for name, split in manifest["splits"].items():
            row = page.locator(f'tr[data-split="{name}"]')
            assert row.locator("[data-records]").get_attribute("data-records") == str(
                split["num_examples"]
            )
            assert row.locator("[data-shards]").get_attribute("data-shards") == str(
                len(split["shards"])
            )
        text = page.inner_text("main")
        assert f"{sum(s['num_examples'] for s in manifest['splits'].values())}" in text
        assert "truncated JPEG" in text and "circle/broken.jpg" not in text  # list folded
        page.click("text=list them")
        assert page.is_visible("text=circle/broken.jpg")
        frame = page.frame_locator("iframe.sample")
        classes = frame.locator("#sample-classes").inner_text()
        assert all(c in classes for c in CLASSES)


def test_every_thumbnail_loads_and_shows_its_class(page, shapes):
    want = truth(shapes)
    with serving(shapes) as url:
        _open(page, url + "/gallery?split=0&n=100")
        tiles = _thumbnails_loaded(page)
    train = sorted(k for k in want if k[0] == 0)
    assert [(t["split"], t["shard"], t["index"]) for t in tiles] == train
    for t in tiles:
        assert t["width"] and t["width"] > 0 and t["height"] > 0, t
        assert t["cls"] == _expected_class(want[(t["split"], t["shard"], t["index"])])


def test_the_class_filter_shows_only_that_class(page, shapes):
    want = truth(shapes)
    label = CLASSES.index("square")
    expected = sorted(
        k for k, f in want.items() if k[0] == 0 and f["image/class/label"][1][0] == label
    )
    with serving(shapes) as url:
        _open(page, url + "/gallery")
        page.select_option("select[name=class]", str(label))
        page.click("button[type=submit]")
        page.wait_for_url("**/gallery?*class=1*")
        tiles = _thumbnails_loaded(page)
    assert [(t["split"], t["shard"], t["index"]) for t in tiles] == expected
    assert {t["cls"] for t in tiles} == {"square"} and {t["label"] for t in tiles} == {"1"}
    assert all(t["width"] > 0 for t in tiles)


def test_a_record_page_lists_every_key_of_the_record(page, shapes):
    want = truth(shapes)
    with serving(shapes) as url:
        for place in [(0, 0, 0), (0, 1, 3), (1, 0, 2)]:
            _open(page, url + "/record/{}/{}/{}".format(*place))
            keys = page.eval_on_selector_all("tr[data-key]", "rows => rows.map(r => r.dataset.key)")
            assert sorted(keys) == sorted(want[place]), place
            assert page.inner_text("main").count(_expected_class(want[place])) >= 1
            page.wait_for_function("document.images[0] && document.images[0].complete")
            assert page.evaluate("document.images[0].naturalWidth") > 0
        page.click("a[rel=next]")
        assert page.url.endswith("/record/1/0/3")


def test_exif_orientation_is_applied_unless_asked_not_to(page, shapes):
    want = truth(shapes)
    [place] = [k for k, f in want.items() if f["image/filename"][1][0] == b"triangle/sideways.jpg"]
    split, shard, index = place
    with serving(shapes) as url:
        sizes = {}
        for stored in (0, 1):
            _open(page, url + f"/gallery?split={split}&shard={shard}&stored={stored}&n=100")
            tile = next(t for t in _thumbnails_loaded(page) if t["index"] == index)
            sizes[stored] = (tile["width"], tile["height"])
    assert sizes[0][0] < sizes[0][1]  # upright: the triangle's picture is tall
    assert sizes[1] == (sizes[0][1], sizes[0][0])  # as stored: on its side


def test_a_damaged_record_is_marked_and_listed(page, shapes, tmp_path):
    copy = tmp_path / "damaged"
    shutil.copytree(shapes, copy)
    manifest = json.loads((copy / "dataset.json").read_text())
    shard = manifest["splits"]["train"]["shards"][1]["file"]
    offset = damage_record(copy, shard, 2)
    with serving(copy) as url:
        _open(page, url + "/gallery?split=0&shard=1")
        tiles = _thumbnails_loaded(page)
        assert [t["index"] for t in tiles if t["damaged"]] == [2]
        assert page.locator('figure.tile[data-index="2"] .badge').inner_text() == "damaged"
        assert all(t["width"] > 0 for t in tiles if not t["damaged"])
        _open(page, url + "/damage?verify=1")
        page.wait_for_selector("#verify-damage tr[data-index]", timeout=WAIT_MS)
        row = page.locator("#verify-damage tr[data-index]")
        assert row.count() == 1
        assert row.get_attribute("data-shard") == "1" and row.get_attribute("data-index") == "2"
        cells = row.locator("td").all_inner_texts()
        assert cells[:4] == [shard, "2", f"{offset:,}", "data CRC mismatch"]


def test_labels_and_file_names_holding_script_are_text(page, hostile):
    [place] = [k for k, f in truth(hostile).items() if f["image/filename"][1][0].endswith(
        XSS_FILE.encode())]  # fmt: skip
    with serving(hostile) as url:
        _open(page, url + "/gallery?n=200")
        tiles = _thumbnails_loaded(page)
        assert XSS_CLASS in [t["cls"] for t in tiles]
        assert all(t["width"] > 0 for t in tiles)
        assert page.evaluate("document.scripts.length") == 0
        _open(page, url + "/")
        assert XSS_CLASS in page.frame_locator("iframe.sample").locator("main").inner_text()
        _open(page, url + "/record/{}/{}/{}".format(*place))
        text = page.inner_text("main")
        assert XSS_CLASS in text and XSS_FILE in text
        assert page.evaluate("document.scripts.length") == 0
        assert page.locator("img[onerror]").count() == 0


def test_a_screenshot_of_each_page(page, shapes, tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "results.json").write_text(json.dumps(_bench_results()))
    from tfrecord_tools.view.bench import load_bench

    shots = tmp_path / "shots"
    shots.mkdir()
    with serving(shapes, bench=load_bench(bench)) as url:
        for name, target in [
            ("overview", "/"),
            ("gallery", "/gallery?n=24"),
            ("record", "/record/0/0/1"),
            ("damage", "/damage"),
            ("bench", "/bench"),
            ("sample", "/sample"),
        ]:
            _open(page, url + target)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shots / f"view-{name}.png"), full_page=name != "gallery")
    from PIL import Image

    for name in ("overview", "gallery", "record", "damage", "bench", "sample"):
        with Image.open(shots / f"view-{name}.png") as shot:
            assert shot.width == 1280 and shot.height >= 300, name
            assert len(np.unique(np.asarray(shot.convert("L")))) > 8, name  # not blank


def _bench_results() -> dict:
    """A benchmark's results.json in the harness's schema (a small grid, made here)."""
    cells = []
    for cache in ("warm", "cold"):
        for source, rate in (("raw", 300.0), ("tfrecord", 900.0)):
            for cores in (1, 2):
                for threads in (1, 2, "auto"):
                    speed = rate * cores * (1.2 if threads != 1 else 1.0)
                    cells.append(
                        {"source": source, "threads": threads, "cores": cores, "cache": cache,
                         "images_per_s": speed, "images_per_s_min": speed * 0.95,
                         "images_per_s_max": speed * 1.05}
                    )  # fmt: skip
    return {
        "schema_version": 1,
        "created": "2026-01-01T00:00:00+00:00",
        "machine": {"cpu_model": "test CPU", "logical_cpus": 2, "tensorflow": "2.x"},
        "config": {"threads": [1, 2, "auto"], "batch_size": 32, "image_size": [64, 64]},
        "data": {"sources": {"raw": {"images": 1000}}},
        "cells": cells,
    }


# --------------------------------------------------------------------------- other places


def test_a_tfds_folder(page, shapes, tmp_path):
    folder = as_tfds_folder(shapes, tmp_path / "tfds")
    info = json.loads((folder / TFDS_INFO).read_text())
    want = truth(shapes)
    with serving(folder) as url:
        _open(page, url + "/")
        assert "TFDS folder" in page.inner_text("main")
        for split in info["splits"]:
            row = page.locator(f'tr[data-split="{split["name"]}"]')
            records = sum(int(n) for n in split["shardLengths"])
            assert row.locator("[data-records]").get_attribute("data-records") == str(records)
        _open(page, url + "/gallery?split=0&shard=1")  # no .idx: the shard is streamed
        tiles = _thumbnails_loaded(page)
        assert [(t["shard"], t["index"]) for t in tiles] == sorted(
            k[1:] for k in want if k[:2] == (0, 1)
        )
        for t in tiles:
            assert t["width"] > 0 and t["cls"] == _expected_class(want[(0, 1, t["index"])])


def test_a_bucket(page, shapes, s3_server):
    import fsspec

    url_ds = s3_server.new_bucket() + "/shapes"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.put(str(shapes) + "/", url_ds.removeprefix("s3://"), recursive=True)
    want = truth(shapes)
    manifest = json.loads((shapes / "dataset.json").read_text())
    with serving(url_ds) as url:
        _open(page, url + "/")
        for name, split in manifest["splits"].items():
            row = page.locator(f'tr[data-split="{name}"]')
            assert row.locator("[data-records]").get_attribute("data-records") == str(
                split["num_examples"]
            )
        _open(page, url + "/gallery?split=0&n=100")
        tiles = _thumbnails_loaded(page)
        assert [(t["split"], t["shard"], t["index"]) for t in tiles] == sorted(
            k for k in want if k[0] == 0
        )
        assert all(t["width"] > 0 for t in tiles)
        assert all(t["cls"] == _expected_class(want[(0, t["shard"], t["index"])]) for t in tiles)
        _open(page, url + "/record/1/0/1")
        keys = page.eval_on_selector_all("tr[data-key]", "rows => rows.map(r => r.dataset.key)")
        assert sorted(keys) == sorted(want[(1, 0, 1)])

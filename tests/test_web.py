"""The static site: built from real exported runs and driven in a real browser (Chromium)."""

from __future__ import annotations

import contextlib
import html
import json
import re
import shutil
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_cli, snapshot, train_in_process
from tinkerflow.core import TinkerflowError, hookimpl
from tinkerflow.core.plugins import make_plugin_manager
from tinkerflow.core.tf_quiet import import_keras

ARTIFACTS = REPO / "test-artifacts" / "web"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic",
                  # a synthetic camera, allowed without asking: pages with a camera button can be driven
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A trained addition run and a trained sine run, both exported to TFLite and tfjs."""
    from tinkerflow.exporters.pipeline import export_run
    from tinkerflow_sine import Sine

    root = tmp_path_factory.mktemp("runs")
    registry = make_plugin_manager()
    addition = train_in_process(root / "a", "experiment.max_sum=16", "experiment.samples=2000",
                                "experiment.test_samples=200", "trainer.epochs=60",
                                "trainer.early_stopping.patience=60")
    assert export_run(addition, registry, ["tfjs", "tflite"], ["float32", "float16", "float32_any_batch"]).ok
    sine = train_in_process(root / "s", "experiment=sine", *Sine.smoke_overrides)
    assert export_run(sine, registry, ["tfjs", "tflite"], ["float32"]).ok
    return {"addition": addition, "sine": sine}


@pytest.fixture(scope="module")
def site(runs, tmp_path_factory):
    """The site, placed in a subfolder as on a static host under /user/project/."""
    from tinkerflow.web_export import build_site

    host_root = tmp_path_factory.mktemp("host")
    out = host_root / "user" / "project"
    report = build_site([runs["addition"], runs["sine"]], out, make_plugin_manager())
    assert len(report.pages) == 2 and not report.warnings
    return host_root, out, report


@pytest.fixture(scope="module")
def server(site):
    from tinkerflow.web_export.serve import make_server

    host_root, _, _ = site
    httpd = make_server(host_root / "user" / "project", "127.0.0.1", 0)
    # serve the host root so that the site lives under a subpath
    httpd.RequestHandlerClass.keywords["directory"] = str(host_root)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/user/project/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def launch(playwright, flags: list[str]):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable:
        return playwright.chromium.launch(executable_path=executable, args=flags)
    import subprocess  # no system Chromium: Playwright's own download, where the network allows it
    import sys

    subprocess.run([sys.executable, "-m", "playwright", "install", "chromium"], check=True)
    return playwright.chromium.launch(args=flags)


@pytest.fixture(scope="module")
def browser(playwright):
    launched = launch(playwright, CHROMIUM_FLAGS)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def webgpu_browser(playwright):
    """Chromium with a real WebGPU adapter: SwiftShader's, emulated on the CPU (pages on http://127.0.0.1)."""
    from tinkerflow.web_export.browser import WEBGPU_FLAGS

    launched = launch(playwright, CHROMIUM_FLAGS + WEBGPU_FLAGS)
    yield launched
    launched.close()


class Watched:
    """A page whose console errors, page errors and failed requests are collected."""

    def __init__(self, browser, phone: bool = False, **context):
        """``phone``: the phone profile pages are held to (390×844 touch screen, CPU slowed 4×)."""
        from tinkerflow.web_export.browser import phone_context, slow_down

        self.context = phone_context(browser, **context) if phone else browser.new_context(**context)
        self.page = self.context.new_page()
        if phone:
            slow_down(self.context, self.page)
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        # a request the browser itself cancelled (a favicon still loading when the test moves
        # the page on) is no failure of the page; refused, reset or blocked ones are
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} ({r.failure})")
                     if r.failure != "net::ERR_ABORTED" else None)
        self.page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url}")
                     if r.status >= 400 else None)
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open_ready(self, url: str):
        self.page.goto(url)
        return self.wait_ready()

    def wait_ready(self):
        from playwright.sync_api import expect

        expect(self.page.locator("body")).to_have_attribute("data-ready", "true", timeout=90_000)
        return self.page

    def close(self, base: str | tuple[str, ...], expected: tuple[str, ...] = ()):
        """Fails on any problem seen, except those holding one of the ``expected`` texts, and on
        any request to elsewhere than ``base`` (an address, or several)."""
        self.context.close()
        problems = [p for p in self.problems if not any(text in p for text in expected)]
        assert not problems, problems
        outside = [u for u in self.requests if not (u.startswith(base) or u.startswith("data:"))]
        assert not outside, f"the page loaded something from elsewhere: {outside}"


def keras_reference(run_dir: Path, x: np.ndarray):
    keras = import_keras()
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    hidden = keras.Model(model.input, model.get_layer("hidden").output)
    return (keras.ops.convert_to_numpy(model(x)).reshape(-1), keras.ops.convert_to_numpy(hidden(x)))


def litert_reference(run_dir: Path, variant: str, x: np.ndarray):
    """The addition sums and hidden layer from Python's LiteRT on the file the page loads."""
    from tinkerflow.exporters.runtime import TFLiteModel

    lite = TFLiteModel(run_dir / "export" / "tflite" / variant / "model.tflite", signature="with_intermediate")
    out = lite.predict_named({"ab": x})
    return out["sum"].reshape(-1), out["hidden"]


def reference(run_dir: Path, runtime: str, variant: str, x: np.ndarray):
    """What the page must show: Python's LiteRT on the same .tflite for LiteRT.js; Keras for
    tfjs (its Node gate already equals Keras)."""
    return litert_reference(run_dir, variant, x) if runtime == "litertjs" else keras_reference(run_dir, x)


@contextlib.contextmanager
def host(root: Path, site: Path):
    """A static host serving ``root``: ``site`` and any other site in its subfolders live under subpaths."""
    from tinkerflow.web_export.serve import make_server

    httpd = make_server(site, "127.0.0.1", 0)
    httpd.RequestHandlerClass.keywords["directory"] = str(root)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- the built files ------------------------------------------------------------------------------

def test_site_layout_and_relative_urls(site):
    _, out, report = site
    assert (out / "index.html").is_file() and (out / "assets" / "tfjs" / "tf.min.js").is_file()
    assert (out / "assets" / "litertjs" / "litertjs_page.js").is_file()
    assert sorted(p.name for p in (out / "assets" / "litertjs" / "wasm").iterdir()) == [
        f"litert_wasm_{build}internal.{ext}" for build in ("compat_", "", "jspi_", "threaded_")
        for ext in ("js", "wasm")], \
        "the plain, compat, threaded and JSPI (WebGPU) builds"
    assert "Cross-Origin-Embedder-Policy: require-corp" in (out / "_headers").read_text()
    index = (out / "index.html").read_text()
    for entry in report.pages:
        assert f'href="models/{entry["slug"]}/index.html"' in index
        for folder, labels, variants in entry["formats"]:  # each size under the runtimes that run it
            assert f"{folder} ({', '.join(labels)}): {variants[0]['name']} {variants[0]['bytes']:,} B" in index
        assert (out / "models" / entry["slug"] / "tfjs" / "float32" / "model.json").is_file()
        assert (out / "models" / entry["slug"] / "tflite" / "float32" / "model.tflite").is_file()
        assert not (out / "models" / entry["slug"] / "tflite" / "float32_any_batch").exists(), "LiteRT.js cannot run it"
    assert "tflite (LiteRT.js" in index and "tfjs (TensorFlow.js)" in index, index
    for page in out.rglob("*.html"):
        text = page.read_text()
        assert "Content-Security-Policy" in text and "default-src 'self'" in html.unescape(text)
        for url in re.findall(r'(?:src|href)="([^"]*)"', text):
            assert not re.match(r"^(?:[a-z]+:)?//|^/", url) or url.startswith("data:"), f"{page}: {url}"
            assert not url.startswith(("http:", "https:")), f"{page}: {url}"
    ours = [out / "assets" / "tinkerflow.js", out / "assets" / "generic_widget.js",
            out / "assets" / "tfjs" / "tfjs_page.js", *out.glob("models/*/widget/*.js")]
    for script in ours:
        assert not re.search(r"https?://", script.read_text()), script


def test_pages_escape_every_text(runs, tmp_path):
    from tinkerflow.web_export import build_site

    evil = tmp_path / "runs" / "addition" / '<img src=x onerror=alert(1)>"run'
    shutil.copytree(runs["addition"], evil)
    out = tmp_path / "site"
    report = build_site([evil], out, make_plugin_manager())
    slug = report.pages[0]["slug"]
    assert "<" not in slug and "/" not in slug and '"' not in slug
    for page in (out / "index.html", out / "models" / slug / "index.html", out / "models" / slug / "embed.html"):
        text = page.read_text()
        assert "<img src=x" not in text
        assert "&lt;img src=x onerror=alert(1)&gt;&quot;run" in text
    config = (out / "models" / slug / "index.html").read_text().split('id="tinkerflow-config">')[1]
    assert "</script" not in config.split("</script>")[0]


def test_output_folder_is_never_clobbered(runs, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    before = snapshot(tmp_path)
    refused = run_cli("web", str(runs["addition"]), "--out", str(out), cwd=tmp_path)
    assert refused.returncode == 2 and "already exists and is not empty; pass --force" in refused.stderr
    forced = run_cli("web", str(runs["addition"]), "--out", str(out), "--force", cwd=tmp_path)
    assert forced.returncode == 2 and "is not a site built by tinkerflow" in forced.stderr
    assert snapshot(tmp_path) == before

    site = tmp_path / "site"
    assert run_cli("web", str(runs["addition"]), "--out", str(site), cwd=tmp_path).returncode == 0
    again = run_cli("web", str(runs["addition"]), str(runs["sine"]), "--out", str(site), "--force", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(list((site / "models").iterdir())) == 2
    assert (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "no staging left"


def test_runs_without_exports(runs, tmp_path):
    bare = tmp_path / "bare_run"
    shutil.copytree(runs["sine"], bare, ignore=shutil.ignore_patterns("export", "export.json"))
    only_bare = run_cli("web", str(bare), "--out", str(tmp_path / "s1"), cwd=tmp_path)
    assert only_bare.returncode == 2
    assert "none of the runs has a tfjs or tflite export that passed its checks" in only_bare.stderr
    assert not (tmp_path / "s1").exists()
    mixed = run_cli("web", str(bare), str(runs["addition"]), "--out", str(tmp_path / "s2"), cwd=tmp_path)
    assert mixed.returncode == 0, mixed.stderr
    assert (f"run '{bare}' has no tfjs or tflite export that passed its checks and runs in a page; "
            "skipped") in mixed.stderr
    missing = run_cli("web", str(tmp_path / "nope"), "--out", str(tmp_path / "s3"), cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


# -- in the browser ----------------------------------------------------------------------------

@pytest.mark.compat
@pytest.mark.parametrize("runtime", ["litertjs", "tfjs"])
def test_addition_page_in_chromium(browser, server, site, runs, runtime):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watched = Watched(browser, viewport={"width": 1280, "height": 900})
    index = watched.page
    index.goto(server + "index.html")
    index.wait_for_load_state("load")
    assert not [u for u in watched.requests if re.search(r"/assets/(litertjs|tfjs|mediapipe)/", u)], \
        "the index downloads no runtime"
    index.click("a.card:has-text('addition')")
    page = watched.wait_ready()
    assert page.locator("body").get_attribute("data-runtime") == "litertjs", "LiteRT.js is the default runtime"
    if runtime != "litertjs":
        page.select_option("#runtime", runtime)
        expect_ready(page, runtime=runtime)
    model_url = page.url
    variant = page.locator("body").get_attribute("data-variant")
    config = next(p["config"] for p in site[2].pages if p["experiment"] == "addition")
    sizes = {v["name"]: v["bytes"] for r in config["runtimes"] if r["name"] == runtime for v in r["variants"]}
    assert sizes[variant] == min(sizes.values()), "the smallest passing export loads first"
    pairs = np.array([[2, 2], [8, 8], [3, 5], [0, 7]], dtype="float32")
    expected, hidden = reference(runs["addition"], runtime, variant, pairs)
    from playwright.sync_api import expect

    timings = []
    for (a, b), want, want_hidden in zip(pairs.astype(int), expected, hidden):
        page.fill("#addition-a", str(a))
        page.fill("#addition-b", str(b))
        expect(page.locator("#addition-true")).to_have_text(str(a + b))
        expect(page.locator("#addition-answer")).to_have_text(f"{want:.2f}")
        answer = float(page.locator("#widget").get_attribute("data-answer"))
        assert abs(answer - want) <= (1e-5 if runtime == "litertjs" else 1e-3), "LiteRT.js computes what LiteRT does"
        shown = [float(t) for t in page.locator("#addition-hidden .row span:last-child").all_text_contents()]
        np.testing.assert_allclose(shown, want_hidden, atol=2e-3)
        timings.append(float(page.locator("body").get_attribute("data-last-prediction-ms")))
    used = page.text_content("#backend-used")
    assert used == "LiteRT.js, wasm, 1 thread" if runtime == "litertjs" else used.startswith("TensorFlow.js, ")
    first = float(page.locator("body").get_attribute("data-first-prediction-ms"))
    page.screenshot(path=ARTIFACTS / f"addition-desktop-{runtime}.png", full_page=True)
    perf_file = ARTIFACTS / "perf.json"
    perf = json.loads(perf_file.read_text()) if perf_file.is_file() else {}
    perf[f"addition_{runtime}"] = {"backend": used, "load_to_first_prediction_ms": first,
                                   "per_prediction_ms_median": float(np.median(timings)), "predictions": len(timings)}
    perf_file.write_text(json.dumps(perf, indent=2))
    print(f"\naddition page: {perf}")
    watched.close(server)

    phone = Watched(browser, phone=True)
    page = phone.open_ready(model_url)
    expect(page.locator("#addition-answer")).to_have_text(f"{expected[0]:.2f}")
    other = {"litertjs": "/assets/tfjs/", "tfjs": "/assets/litertjs/"}[runtime]
    assert not [u for u in phone.requests if other in u], f"a first visit on {runtime} downloads only {runtime}"
    page.screenshot(path=ARTIFACTS / f"addition-phone-{runtime}.png", full_page=True)
    sideways = page.evaluate("""() => [document.documentElement, ...document.querySelectorAll('.panel')]
        .filter(e => e.scrollWidth > e.clientWidth + 1)
        .map(e => `${e.querySelector('h2')?.textContent ?? 'the page'}: ${e.scrollWidth} > ${e.clientWidth}`)""")
    assert not sideways, f"at 390 px these scroll sideways: {sideways}"
    exports = page.locator("table.columns td[data-label='size']").first
    assert exports.evaluate("e => getComputedStyle(e, '::before').content") == '"size: "', "rows laid out as cards"
    phone.close(server)


def expect_ready(page, **attributes):
    from playwright.sync_api import expect

    for name, value in attributes.items():
        expect(page.locator("body")).to_have_attribute(f"data-{name}", value, timeout=60_000)
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)


def test_runtime_variant_backend_and_threads_choice(browser, server, site, runs):
    from playwright.sync_api import expect

    _, out, report = site
    slug = next(p["slug"] for p in report.pages if p["experiment"] == "addition")
    url = f"{server}models/{slug}/index.html"
    x = np.array([[2, 2]], dtype="float32")
    watched = Watched(browser)
    page = watched.open_ready(url)
    page.select_option("#variant", "float32")
    expect_ready(page, variant="float32")
    assert page.locator("body").get_attribute("data-runtime") == "litertjs", "the runtime stays chosen"
    answer = litert_reference(runs['addition'], 'float32', x)[0][0]
    expect(page.locator("#addition-answer")).to_have_text(f"{answer:.2f}")
    page = watched.open_ready(f"{url}?runtime=litertjs&threads=2")
    assert page.text_content("#backend-used") == "LiteRT.js, wasm, 2 threads", "serve sends COOP/COEP: threads work"
    assert page.evaluate("() => crossOriginIsolated") is True
    variant = page.locator("body").get_attribute("data-variant")
    expect(page.locator("#addition-answer")).to_have_text(f"{litert_reference(runs['addition'], variant, x)[0][0]:.2f}")
    keras_answer = keras_reference(runs["addition"], x)[0][0]
    for backend in ("cpu", "wasm"):
        page = watched.open_ready(f"{url}?runtime=tfjs&backend={backend}")
        assert page.text_content("#backend-used") == f"TensorFlow.js, {backend}"
        expect(page.locator("#addition-answer")).to_have_text(f"{keras_answer:.2f}")
    watched.close(server)


def test_pages_run_one_thread_where_the_host_sends_no_isolation_headers(browser, site, runs):
    from tinkerflow.web_export.serve import serving

    _, out, report = site
    slug = next(p["slug"] for p in report.pages if p["experiment"] == "addition")
    with serving(out, isolated=False) as base:
        watched = Watched(browser)
        page = watched.open_ready(f"{base}models/{slug}/index.html?threads=2")
        assert page.evaluate("() => crossOriginIsolated") is False
        assert page.text_content("#backend-used") == "LiteRT.js, wasm, 1 thread"
        assert "cross-origin isolated" in page.text_content("#note")
        watched.close(base)


def test_webgpu_is_a_page_option_chosen_by_default_only_where_measured_faster(browser, webgpu_browser, server, site,
                                                                              runs):
    from playwright.sync_api import expect

    _, out, report = site
    slug = next(p["slug"] for p in report.pages if p["experiment"] == "addition")
    url = f"{server}models/{slug}/index.html?runtime=litertjs&variant=float32"
    x = np.array([[2, 2]], dtype="float32")
    answer = f"{litert_reference(runs['addition'], 'float32', x)[0][0]:.2f}"

    watched = Watched(browser)  # no adapter: the page says so and runs on wasm
    page = watched.open_ready(f"{url}&accelerator=webgpu")
    assert page.text_content("#backend-used") == "LiteRT.js, wasm, 1 thread"
    assert "This browser has no WebGPU adapter; running on wasm." in page.text_content("#note")
    expect(page.locator("#addition-answer")).to_have_text(answer)
    watched.close(server)

    watched = Watched(webgpu_browser)
    page = watched.open_ready(f"{url}&accelerator=webgpu")
    assert page.text_content("#backend-used") == "LiteRT.js, webgpu, google swiftshader"
    assert page.locator("#option-accelerator").input_value() == "webgpu", "the menu shows the URL's choice"
    check = json.loads(page.locator("body").get_attribute("data-accelerator-check"))
    assert check["agrees"] and check["worst"] <= check["tolerance"] and check["tolerance"] >= 1e-4
    expect(page.locator("#addition-answer")).to_have_text(answer)
    page.select_option("#option-accelerator", "wasm")
    expect_ready(page, backend="wasm, 1 thread")
    assert "accelerator=wasm" in page.url

    page = watched.open_ready(url)  # auto: wasm, then both timed once; the faster is the next visit's
    assert page.text_content("#backend-used") == "LiteRT.js, wasm, 1 thread"
    expect(page.locator("body")).to_have_attribute("data-accelerator-verdict", re.compile("faster"), timeout=60_000)
    verdict = json.loads(page.locator("body").get_attribute("data-accelerator-verdict"))
    assert verdict["adapter"] == "google swiftshader" and verdict["check"]["agrees"]
    assert verdict["faster"] == ("webgpu" if verdict["webgpu_ms"] < verdict["wasm_ms"] else "wasm")
    expect(page.locator("#note")).to_contain_text("Measured on this device (google swiftshader): WebGPU ")
    page = watched.open_ready(url)
    assert page.locator("body").get_attribute("data-backend").startswith(verdict["faster"])
    page.wait_for_function("() => window.tinkerflow.predict !== undefined")
    assert page.locator("body").get_attribute("data-accelerator-verdict") is None, "measured once, not every visit"
    page.evaluate("""() => { const kept = JSON.parse(localStorage.getItem('tinkerflow-accelerator'));
        for (const k of Object.keys(kept)) kept[k].faster = 'webgpu';
        localStorage.setItem('tinkerflow-accelerator', JSON.stringify(kept)); }""")
    page = watched.open_ready(url)  # a device where WebGPU measured faster runs on it by default
    assert page.text_content("#backend-used") == "LiteRT.js, webgpu, google swiftshader"
    expect(page.locator("#addition-answer")).to_have_text(answer)
    watched.close(server)


@pytest.mark.parametrize("run_fixture", ["dcgan_run", "classifier_run", "lyrics_run"])
def test_webgpu_computes_what_python_litert_computes_or_falls_back(request, webgpu_browser, tmp_path, run_fixture):
    """Every .tflite variant of the page on WebGPU (SwiftShader) against Python's LiteRT on the
    same file and inputs; a variant WebGPU gets wrong or cannot run is run on wasm, with a note."""
    from tinkerflow.exporters.runtime import load
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    run_dir = request.getfixturevalue(run_fixture)
    report = build_site([run_dir], tmp_path / "site", make_plugin_manager())
    slug = report.pages[0]["slug"]
    runtime = next(r for r in report.pages[0]["config"]["runtimes"] if r["name"] == "litertjs")
    figures = {}
    with serving(tmp_path / "site") as base:
        watched = Watched(webgpu_browser)
        for variant in [v["name"] for v in runtime["variants"]]:
            lite = load(run_dir / "export" / "tflite" / variant)
            manifest = json.loads((run_dir / "export" / "tflite" / variant / "manifest.json").read_text())
            rng = np.random.default_rng(7)
            feeds = {i["name"]: (rng.integers(0, 10, i["shape"]).astype("int32") if i["dtype"] == "int32"
                                 else rng.uniform(0, 1, i["shape"]).astype("float32")) for i in manifest["inputs"]}
            want = lite.predict_named(feeds)
            page = watched.open_ready(f"{base}models/{slug}/index.html?runtime=litertjs&variant={variant}"
                                      "&accelerator=webgpu")
            got = page.evaluate("""async (feeds) => Object.fromEntries(Object.entries(
                await window.tinkerflow.predict(feeds)).map(([name, t]) => [name, Array.from(t.data)]))""",
                                {n: {"data": a.ravel().tolist(), "shape": list(a.shape)} for n, a in feeds.items()})
            worst = max(float(np.abs(np.array(got[n]) - np.asarray(want[n]).ravel()).max()) for n in want)
            scale = max(float(np.abs(want[n]).max()) for n in want)
            backend = page.locator("body").get_attribute("data-backend")
            figures[variant] = {"backend": backend, "max_abs_diff": worst, "scale": scale,
                                "note": page.text_content("#note")}
            if backend.startswith("webgpu"):
                allowed = max(scale, 1) * (1e-2 if manifest.get("quantized") else 1e-4)
                assert worst <= allowed, f"{variant} on WebGPU is off Python's LiteRT by {worst} (allowed {allowed})"
            else:
                assert backend == "wasm, 1 thread" and "running on wasm" in figures[variant]["note"], figures[variant]
                assert worst <= max(scale, 1) * 1e-4, f"{variant}: the fallback computes what LiteRT does"
        watched.close(base)
        if run_fixture == "lyrics_run":
            page_url = f"{base}models/{slug}/index.html?runtime=litertjs&accelerator=webgpu"
            # a browser without JSPI gets the plain build, which runs the CPU's share of the model too
            watched = Watched(webgpu_browser)
            watched.context.add_init_script("delete WebAssembly.Suspending;")
            page = watched.open_ready(page_url)
            assert page.locator("body").get_attribute("data-backend") == "webgpu, google swiftshader"
            assert "the rest run on the CPU" in page.text_content("#note")
            assert [u.rsplit("/", 1)[1] for u in watched.requests if "/wasm/" in u] == [
                "litert_wasm_internal.js", "litert_wasm_internal.wasm"]
            watched.close(base)
            # an adapter that gives no device (a GPU the browser blocks): the page says so and runs on wasm
            watched = Watched(webgpu_browser)
            watched.context.add_init_script("GPUAdapter.prototype.requestDevice = async () => { "
                                            "throw new Error('no device for you'); };")
            page = watched.open_ready(page_url)
            assert page.locator("body").get_attribute("data-backend") == "wasm, 1 thread"
            assert re.search(r"WebGPU could not run this model \(.+\); running on wasm\.", page.text_content("#note"))
            watched.close(base, expected=("Failed to create default WebGPU device", "no device for you"))
    if run_fixture == "dcgan_run":
        assert figures["float32"]["backend"].startswith("webgpu") and figures["int8"]["backend"].startswith("webgpu")
    assert any(f["backend"].startswith("webgpu") for f in figures.values())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    record = ARTIFACTS / "webgpu-parity.json"
    kept = json.loads(record.read_text()) if record.is_file() else {}
    kept[report.pages[0]["experiment"]] = figures
    record.write_text(json.dumps(kept, indent=2))
    print(f"\n{report.pages[0]['experiment']} on WebGPU (SwiftShader) vs Python LiteRT: {json.dumps(figures)}")


def test_a_model_litertjs_cannot_run_falls_back_to_tfjs_with_a_note(browser, runs, tmp_path):
    """Only the any-batch .tflite passed (LiteRT.js takes fixed shapes only): the page says so
    and runs the tfjs export."""
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    run = tmp_path / "runs" / "addition" / "r1"
    shutil.copytree(runs["addition"], run)
    for variant in ("float32", "float16"):
        shutil.rmtree(run / "export" / "tflite" / variant)
    out = tmp_path / "site"
    report = build_site([run], out, make_plugin_manager())
    assert report.pages[0]["runtimes"] == ["tfjs"] and not (out / "assets" / "litertjs").exists(), \
        "a site ships only the runtimes its pages use"
    with serving(out) as base:
        watched = Watched(browser)
        page = watched.open_ready(f"{base}models/{report.pages[0]['slug']}/index.html")
        assert page.locator("body").get_attribute("data-runtime") == "tfjs"
        assert "LiteRT.js cannot run this model's exports: tflite/float32_any_batch: not for LiteRT.js: input 'ab' " \
               "has shape [None, 2]" in page.text_content("#note")
        assert page.text_content("#addition-answer") not in ("", "…")
        watched.close(base)
    shutil.rmtree(run / "export" / "tfjs")
    skipped = run_cli("web", str(run), "--out", str(tmp_path / "none"), cwd=tmp_path)
    assert skipped.returncode == 2 and "not for LiteRT.js: input 'ab' has shape [None, 2]" in skipped.stderr


def test_third_party_widget_and_generic_form(browser, server, site, runs, tmp_path):
    from playwright.sync_api import expect

    _, out, report = site
    slug = next(p["slug"] for p in report.pages if p["experiment"] == "sine")
    keras = import_keras()
    model = keras.saving.load_model(runs["sine"] / "model.keras", compile=False)
    watched = Watched(browser, phone=True)
    page = watched.open_ready(f"{server}models/{slug}/index.html")
    want = float(np.asarray(model(np.array([[1.0]], dtype="float32")))[0, 0])
    expect(page.locator("#sine-y")).not_to_have_text("…")
    # WebGL computes tanh in shaders at lower precision than Keras on the CPU
    assert abs(float(page.text_content("#sine-y")) - want) < 2e-3
    watched.close(server)

    # the same run without its widget: the generic form from the manifest
    from tinkerflow.web_export import build_site, builder

    original = builder._widget_dir
    builder._widget_dir = lambda experiment: None
    try:
        generic_root = out.parent / "generic"
        build_site([runs["sine"]], generic_root, make_plugin_manager())
    finally:
        builder._widget_dir = original
    generic_slug = next((generic_root / "models").iterdir()).name
    watched = Watched(browser, phone=True)
    page = watched.open_ready(f"{server.removesuffix('project/')}generic/models/{generic_slug}/index.html")
    first = page.locator(".generic input").first
    first.fill("0.5")
    want = float(np.asarray(model(np.array([[0.5]], dtype="float32")))[0, 0])
    expect(page.locator(".generic output")).to_have_text(re.compile(r"^y = \[-?\d\.\d{4}\]$"))
    expect(page.locator("body")).to_have_attribute("data-predictions", "2")
    shown = float(page.text_content(".generic output").split("[")[1].rstrip("]"))
    assert abs(shown - want) < 2e-3
    watched.close(server.removesuffix("project/") + "generic/")


def _sine_widget(folder: Path, wrong: str | None = None, extra: str = "") -> Path:
    """The sine example's widget with one line replaced (``wrong``), in ``folder``."""
    source = (REPO / "examples" / "tinkerflow-sine" / "tinkerflow_sine" / "web")
    folder.mkdir(parents=True)
    text = (source / "widget.js").read_text()
    if wrong is not None:
        text = text.replace('    root.querySelector("#sine-y").textContent = result.y.data[0].toFixed(4);\n', wrong)
    (folder / "widget.js").write_text(text + extra)
    (folder / "widget.html").write_text((source / "widget.html").read_text())
    return folder


def test_a_broken_widget_is_named_with_its_file_and_line_not_blamed_on_the_model(browser, server, site, runs, tmp_path):
    from playwright.sync_api import expect

    from tinkerflow.web_export import build_site, builder

    _, out, _ = site
    unparsable = _sine_widget(tmp_path / "unparsable", extra="export function helper() {\n  return [1, 2;\n}\n")
    original = builder._widget_dir
    builder._widget_dir = lambda experiment: unparsable
    try:
        with pytest.raises(TinkerflowError) as caught:
            build_site([runs["sine"]], out.parent / "unparsable", make_plugin_manager())
        assert str(caught.value).startswith("the widget of experiment 'sine' does not parse: SyntaxError: ")
        assert f"({unparsable / 'widget.js'}:15)" in str(caught.value), str(caught.value)
        assert not (out.parent / "unparsable").exists(), "nothing is built"

        # a wrong output name: widget.js line 8 reads an output the model does not have
        wrong = _sine_widget(tmp_path / "wrong", '    root.querySelector("#sine-y").textContent = '
                                                 'result.why.data[0].toFixed(4);\n')
        builder._widget_dir = lambda experiment: wrong
        build_site([runs["sine"]], out.parent / "wrong", make_plugin_manager())
        # and a module that stopped parsing after the site was built
        builder._widget_dir = lambda experiment: unparsable
        builder.check_widget_syntax, check = (lambda folder, name: None), builder.check_widget_syntax
        try:
            build_site([runs["sine"]], out.parent / "unparsable_page", make_plugin_manager())
        finally:
            builder.check_widget_syntax = check
    finally:
        builder._widget_dir = original
    base = server.removesuffix("project/")
    for name, message in (
            ("wrong", "widget.js failed: TypeError: Cannot read properties of undefined (reading 'data') "
                      "(widget.js:8)"),
            ("unparsable_page", "widget.js could not be loaded: SyntaxError: ")):
        slug = next((out.parent / name / "models").iterdir()).name
        watched = Watched(browser)
        page = watched.page
        page.goto(f"{base}{name}/models/{slug}/index.html")
        expect(page.locator("body")).to_have_attribute("data-ready", "error", timeout=90_000)
        shown = page.text_content("#error")
        assert shown.startswith(message) and "could not run" not in shown, shown
        assert any(p.startswith(f"console error: tinkerflow: {message}") for p in watched.problems), watched.problems
        watched.close(base, expected=("console error: tinkerflow: widget.js",))


def test_bench_browser_measures_every_runtime_of_the_page(runs, tmp_path):
    run = tmp_path / "runs" / "addition" / "r1"
    shutil.copytree(runs["addition"], run)
    done = run_cli("bench", str(run), "--browser", "--seconds", "0.05", "--batch", "8", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for text in ("native LiteRT", "LiteRT.js (Chromium)", "TensorFlow.js (Chromium), wasm", "first visit of the page",
                 "litertjs over native float32", "tfjs over litertjs float32", "any batch over fixed float32",
                 "LiteRT.js (Chromium), webgpu, google swiftshader (emulated)", "webgpu over wasm float32"):
        assert text in " ".join(done.stdout.split()), text
    browser = json.loads((run / "bench.json").read_text())["browser"]
    measured = {(r["where"], r["runtime"], r["variant"], r["threads"], r.get("accelerator"))
                for r in browser["rows"] if r.get("warm_ms", 0) > 0}
    for variant in ("float32", "float16"):
        assert {("native", "litert", variant, 1, None), ("native", "litert", variant, 2, None),
                ("browser", "litertjs", variant, 1, "wasm"), ("browser", "litertjs", variant, 2, "wasm"),
                ("browser", "litertjs", variant, 1, "webgpu"), ("browser", "tfjs", variant, 1, None)} <= measured
    gpu_rows = [r for r in browser["rows"] if r.get("accelerator") == "webgpu"]
    assert gpu_rows and all(r["backend"] == "webgpu, google swiftshader" for r in gpu_rows)
    assert ("native", "litert", "float32_any_batch", 1, None) in measured
    assert not any(r["runtime"] == "litertjs" and r["variant"] == "float32_any_batch" for r in browser["rows"])
    first = browser["first_visit"]
    assert first["runtime"] == "litertjs" and first["first_result_ms"] > 0
    assert 0 < first["gzip_bytes"] < first["bytes"] and first["requests"] >= 5
    assert 9e6 < first["bytes"] < 12e6, "one LiteRT.js wasm build (9.4 MB) and a small model, not every build"
    phone = {r["runtime"]: r for r in browser["phone"]}
    assert set(phone) == {"litertjs", "tfjs"} and phone["litertjs"]["cpu_slowdown"] == 4
    from tinkerflow.web_export import build_site

    page = build_site([run], tmp_path / "site", make_plugin_manager()).pages[0]
    defaults = {r["name"]: r["default_variant"] for r in page["config"]["runtimes"]}
    for row in phone.values():
        assert row["variant"] == defaults[row["runtime"]], "each runtime's default variant, as a viewer gets it"
        assert row["first_result_ms"] > 0 and row["return_first_result_ms"] > 0 and row["warm_ms"] > 0
        assert 0 < row["gzip_bytes"] < row["bytes"]
        assert browser["ratios"][f"phone_over_desktop_{row['runtime']}_{row['variant']}"] > 0
    assert "on the phone profile: 390×844 touch screen, CPU slowed 4×" in done.stdout
    assert "On a phone-class CPU" in page["card"] and "slowed 4×" in page["card"]


def test_default_runtime_follows_the_browser_benchmark(runs, tmp_path):
    from tinkerflow.web_export import build_site

    run = tmp_path / "runs" / "addition" / "r1"
    shutil.copytree(runs["addition"], run)
    rows = [{"where": "native", "runtime": "litert", "variant": "float32", "threads": 1, "warm_ms": 0.001},
            {"where": "browser", "runtime": "litertjs", "variant": "float32", "threads": 1, "warm_ms": 0.09},
            {"where": "browser", "runtime": "tfjs", "variant": "float32", "threads": 1, "warm_ms": 0.05}]
    (run / "bench.json").write_text(json.dumps({"batch": 1, "rows": [], "browser": {"batch": 1, "rows": rows}}))
    config = build_site([run], tmp_path / "site", make_plugin_manager()).pages[0]["config"]
    assert config["default_runtime"] == "tfjs" and "browser benchmark (0.05 ms)" in config["default_reason"]
    (run / "bench.json").unlink()
    config = build_site([run], tmp_path / "site2", make_plugin_manager()).pages[0]["config"]
    assert config["default_runtime"] == "litertjs" and "no browser benchmark" in config["default_reason"]


def test_serve_binds_to_loopback_and_serves_the_site(site):
    import subprocess
    import urllib.request

    from conftest import TINKERFLOW

    _, out, _ = site
    proc = subprocess.Popen([TINKERFLOW, "serve", str(out), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"on http://(127\.0\.0\.1):(\d+)/", line)
        assert match, line
        with urllib.request.urlopen(f"http://127.0.0.1:{match.group(2)}/index.html", timeout=10) as response:
            assert b"tinkerflow models" in response.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = run_cli("serve", str(out / "models"), cwd=out)
    assert bad.returncode == 2 and "has no index.html; expected a site built with 'tinkerflow web'" in bad.stderr


# -- the lyrics page -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lyrics_run(tmp_path_factory):
    from tinkerflow.exporters.pipeline import export_run

    root = tmp_path_factory.mktemp("lyrics")
    songs = root / "songs"
    songs.mkdir()
    verses = [f"hello world number {i}\nwe sing the song of {i % 7} again\nand again we go" for i in range(30)]
    (songs / "all.txt").write_text("\n\n".join(verses), encoding="utf-8")
    run_dir = train_in_process(root / "runs", "experiment=lyrics", "data.source=text_folder", f"data.path={songs}",
                               "experiment.vocab_size=200", "experiment.lstm_units=16", "experiment.embedding_dim=8",
                               "experiment.window=5", "trainer.epochs=60", "trainer.learning_rate=0.02",
                               "trainer.early_stopping.enabled=false", "trainer.checkpoint_seconds=0")
    assert export_run(run_dir, make_plugin_manager(), ["tfjs", "tflite"], ["float32"]).ok
    return run_dir


@pytest.mark.parametrize("runtime, backend", [("litertjs", "auto"), ("litertjs", "webgpu"), ("tfjs", "webgl"),
                                              ("tfjs", "auto")])
def test_lyrics_page_writes_the_python_greedy_words(request, browser, lyrics_run, tmp_path, runtime, backend):
    from tinkerflow.core.runs import open_run
    from tinkerflow.plugins.lyrics.generate import generate
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    out = tmp_path / "site"
    report = build_site([lyrics_run], out, make_plugin_manager())
    prompt = "<i>x</i> hello world"
    with serving(out) as base:
        webgpu = backend == "webgpu"
        watched = Watched(request.getfixturevalue("webgpu_browser") if webgpu else browser, phone=True)
        option = "accelerator" if runtime == "litertjs" else "backend"
        query = f"?runtime={runtime}" + ("" if backend == "auto" else f"&{option}={backend}")
        page = watched.open_ready(f"{base}models/{report.pages[0]['slug']}/index.html{query}")
        if runtime == "tfjs":
            backend = "wasm" if backend == "auto" else backend  # the manifest's choice
            assert page.locator("body").get_attribute("data-backend") == backend
        else:
            backend = "litertjs_webgpu" if webgpu else "litertjs"
            assert page.locator("body").get_attribute("data-backend") == (
                "webgpu, google swiftshader" if webgpu else "wasm, 1 thread")
        page.fill("#lyrics-prompt", prompt)
        page.fill("#lyrics-temperature", "0")
        page.fill("#lyrics-words", "25")
        page.click("#lyrics-write")
        from playwright.sync_api import expect

        expect(page.locator("#widget")).to_have_attribute("data-done", "true", timeout=60_000)
        words = json.loads(page.locator("#widget").get_attribute("data-words"))
        text = page.locator("#lyrics-output").text_content()
        assert page.locator("#lyrics-output i").count() == 0 and text.startswith("<i>x</i> hello world")
        ms_per_word = float(page.locator("#widget").get_attribute("data-ms-per-word"))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"lyrics-phone-{backend}.png"), full_page=True)
        page.fill("#lyrics-prompt", "zebra quasar")
        page.click("#lyrics-write")
        expect(page.locator("#lyrics-message")).to_contain_text("None of these words")
        watched.close(base)

    from tinkerflow.exporters.runtime import load
    from tinkerflow.plugins.lyrics.generate import Stepper

    run, experiment = open_run(lyrics_run, make_plugin_manager())
    model = run.load_model(experiment.custom_objects())
    expected = generate(experiment.predictor(model), experiment.vocab, prompt, 25,
                        experiment.config.window, temperature=0.0)
    assert words == expected, "greedy decoding in the browser writes the same words as Python"
    stepper = Stepper(load(lyrics_run / "export" / "tflite" / "float32").predict_named, experiment.state_shape)
    assert generate(stepper, experiment.vocab, prompt, 25, experiment.config.window, temperature=0.0) == words, \
        "and as Python's LiteRT stepping the same .tflite"
    assert len(set(words)) >= 3, f"a model that says more than one word makes the comparison mean something: {words}"
    perf = ARTIFACTS / "perf.json"
    record = json.loads(perf.read_text()) if perf.is_file() else {}
    record[f"lyrics_ms_per_word_{backend}"] = ms_per_word
    perf.write_text(json.dumps(record, indent=2))


# -- the classifier page ----------------------------------------------------------------------------

DOG, OTHER = "<i>dog", "not & dog"   # class folder names a page must show as text


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    from test_classifier import photo

    from tinkerflow.exporters.pipeline import export_run

    root = tmp_path_factory.mktemp("classifier")
    for name, kind, offset in ((DOG, "mila", 0), (OTHER, "other", 1000)):
        (root / "photos" / name).mkdir(parents=True)
        for i in range(20):
            photo(kind, offset + i).save(root / "photos" / name / f"{i}.jpg", quality=92)
    run_dir = train_in_process(root / "runs", "experiment=classifier", f"data.path={root / 'photos'}",
                               "experiment.image_size=32", "model.filters=[8,8,16]", "model.dense=16",
                               "trainer.epochs=25", "trainer.batch_size=8", "trainer.learning_rate=0.003",
                               "trainer.early_stopping.enabled=false", "trainer.checkpoint_seconds=0")
    assert export_run(run_dir, make_plugin_manager(), ["tfjs", "tflite"], ["float32", "uint8_io"]).ok
    return run_dir


@pytest.mark.parametrize("runtime, variant", [("litertjs", "float32"), ("litertjs", "uint8_io"),
                                              ("litertjs-webgpu", "float32"), ("tfjs", "float32"),
                                              ("mediapipe", "float32"), ("mediapipe", "uint8_io")])
def test_classifier_page_agrees_with_python_on_a_photo_file(request, browser, classifier_run, tmp_path, runtime,
                                                            variant):
    from PIL import Image
    from playwright.sync_api import expect
    from test_classifier import photo

    from tinkerflow.core.runs import open_run
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 8                                        # stored sideways: viewers turn it upright
    blend = Image.blend(photo("mila", 777, size=(160, 100)), photo("other", 778, size=(160, 100)), 0.45)
    blend.save(turned, quality=92, exif=exif)              # half one class, half the other: no saturated 0 or 1
    out = tmp_path / "site"
    report = build_site([classifier_run], out, make_plugin_manager())
    runtime, _, accelerator = runtime.partition("-")
    with serving(out) as base:
        watched = Watched(request.getfixturevalue("webgpu_browser") if accelerator else browser, phone=True)
        slug = report.pages[0]["slug"]
        page = watched.open_ready(f"{base}models/{slug}/index.html?runtime={runtime}&variant={variant}"
                                  + (f"&accelerator={accelerator}" if accelerator else ""))
        assert page.locator("body").get_attribute("data-runtime") == runtime
        assert page.locator("body").get_attribute("data-variant") == variant
        if accelerator:
            assert page.locator("body").get_attribute("data-backend") == "webgpu, google swiftshader"
        widget = page.locator("#widget")
        page.set_input_files("#classifier-file", str(turned))
        expect(widget).to_have_attribute("data-done", "true", timeout=60_000)
        label = widget.get_attribute("data-label")
        browser_p = np.array(json.loads(widget.get_attribute("data-probabilities")))
        rgba = page.evaluate("() => { const c = document.querySelector('#classifier-canvas');"
                             " return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }")
        browser_x = np.array(rgba, "float32").reshape(1, 32, 32, 4)[..., :3]
        assert page.locator("#classifier-label").text_content() == label
        assert page.locator("#classifier-bars li").count() == 2 and page.locator("#widget i").count() == 0
        assert DOG in page.locator("#classifier-bars").text_content(), "labels are shown as text"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"classifier-phone-{runtime}{accelerator}-{variant}.png"), full_page=True)
        page.click("#classifier-camera")                    # Chromium's synthetic camera
        expect(page.locator("#classifier-snap")).to_be_visible(timeout=30_000)
        page.wait_for_function("() => document.querySelector('#classifier-video').videoWidth > 0")
        predictions = int(page.locator("body").get_attribute("data-predictions"))
        page.click("#classifier-snap")
        expect(page.locator("body")).to_have_attribute("data-predictions", str(predictions + 1), timeout=30_000)
        assert sum(json.loads(widget.get_attribute("data-probabilities"))) == pytest.approx(
            1, abs=1e-4 if variant == "float32" else 2 / 256), "uint8 scores are in steps of 1/256"
        (tmp_path / "notes.jpg").write_text("not a photo")
        page.set_input_files("#classifier-file", str(tmp_path / "notes.jpg"))
        expect(page.locator("#classifier-message")).to_contain_text("could not be read as an image")
        watched.close(base)

    run, experiment = open_run(classifier_run, make_plugin_manager())
    core = experiment.export_model(run.load_model(experiment.custom_objects()))
    _, x, _ = experiment.prepare_files(turned)
    python_p = import_keras().ops.convert_to_numpy(core(x))[0]
    assert label == experiment.classes[int(python_p.argmax())]
    difference = np.abs(browser_x - x)
    assert difference.mean() < 4 and np.percentile(difference, 99) < 40, \
        "the page prepares the photo as Python does: upright (EXIF), centre square, smooth resize"
    keras_on_browser_pixels = import_keras().ops.convert_to_numpy(core(browser_x))[0]
    np.testing.assert_allclose(browser_p, keras_on_browser_pixels, atol=1e-4 if variant == "float32" else 0.05)
    if runtime in ("litertjs", "mediapipe"):
        from tinkerflow.exporters.runtime import load

        litert = load(classifier_run / "export" / "tflite" / variant).predict(browser_x)[0]
        # WebGPU's float32 sums in another order than the CPU's kernels: the deploy bundle's 1e-4 of the scale
        np.testing.assert_allclose(browser_p, litert, atol=1e-4 if accelerator else 1e-6,
                                   err_msg=f"{runtime} {accelerator} computes what LiteRT does")


def test_mediapipe_in_the_browser_gives_keras_labels_and_its_telemetry_is_blocked(browser, classifier_run, tmp_path):
    from tinkerflow.core.runs import open_run
    from tinkerflow.exporters.runtime import load
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    run, experiment = open_run(classifier_run, make_plugin_manager())
    core = experiment.export_model(run.load_model(experiment.custom_objects()))
    images = np.asarray(experiment.example_inputs(), "float32")
    keras_labels = import_keras().ops.convert_to_numpy(core(images)).argmax(axis=1)
    out = tmp_path / "site"
    report = build_site([classifier_run], out, make_plugin_manager())
    slug = report.pages[0]["slug"]
    with serving(out) as base:
        watched = Watched(browser)
        watched.context.add_init_script("window.violations = []; document.addEventListener('securitypolicyviolation',"
                                        " (e) => window.violations.push([e.effectiveDirective, e.blockedURI]));")
        page = watched.open_ready(f"{base}models/{slug}/index.html?runtime=mediapipe")
        for variant in ("float32", "uint8_io"):
            scores = np.array(page.evaluate("""async ([variant, images, shape]) => {
                const runtime = await import("../../assets/mediapipe/mediapipe_page.js");
                const base = new URL(`tflite/${variant}/`, location.href).href;
                const manifest = await (await fetch(`${base}manifest.json`)).json();
                const model = await runtime.open(base, manifest, {});
                const result = await model.run({ image: { data: images, shape } });
                model.dispose();
                return Array.from(Object.values(result)[0].data);
            }""", [variant, images.ravel().tolist(), list(images.shape)])).reshape(len(images), -1)
            labels = scores.argmax(axis=1)
            assert (labels == keras_labels).all(), f"{variant}: MediaPipe in Chromium disagrees with Keras"
            litert = load(classifier_run / "export" / "tflite" / variant).predict(images)
            np.testing.assert_allclose(scores, litert, atol=1e-6,
                                       err_msg=f"{variant}: the same file on the same pixels")
        # closing a classifier sends MediaPipe's usage log; the site's CSP is what stops it
        page.wait_for_function("() => window.violations.some(([d, uri]) => d === 'connect-src' && "
                               "uri.includes('googleapis'))")
        assert "connect-src 'self'" in page.locator("meta[http-equiv=Content-Security-Policy]").get_attribute("content")
        watched.close(base, expected=("googleapis.com/v1/log",))


# -- the generator page ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    from tinkerflow.exporters.pipeline import export_run

    root = tmp_path_factory.mktemp("dcgan")
    run_dir = train_in_process(root / "runs", "experiment=dcgan", "data.style=opaque_color", "data.count=128",
                               "experiment.image_size=16", "model.width=8", "model.latent_dim=8",
                               "model.conditional=true", "trainer.batch_size=32", "trainer.epochs=2",
                               "trainer.checkpoint_seconds=0")
    assert export_run(run_dir, make_plugin_manager(), ["tfjs", "tflite"], ["float32", "int8"]).ok
    return run_dir


def tiles(page, canvas: str, n: int, across: int, size: int, gap: int = 2) -> np.ndarray:
    rgba = np.array(page.evaluate(f"() => {{ const c = document.querySelector('{canvas}');"
                                  " return Array.from(c.getContext('2d')"
                                  ".getImageData(0, 0, c.width, c.height).data); }"),
                    "float64")
    width = across * (size + gap) + gap
    image = rgba.reshape(-1, width, 4)[..., :3]
    return np.stack([image[gap + (k // across) * (size + gap):][:size, gap + (k % across) * (size + gap):][:, :size]
                     for k in range(n)])


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    omega = np.arccos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


@pytest.mark.parametrize("runtime, variant", [("litertjs", "float32"), ("litertjs", "int8"),
                                              ("litertjs-webgpu", "float32"), ("tfjs", "float32")])
def test_generator_page_draws_what_python_draws(request, browser, dcgan_run, tmp_path, runtime, variant):
    from playwright.sync_api import expect

    from tinkerflow.core.runs import open_run
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    runtime, _, accelerator = runtime.partition("-")
    run, experiment = open_run(dcgan_run, make_plugin_manager())
    generator = experiment.export_model(run.load_model(experiment.custom_objects()))
    keras = import_keras()

    def python_pixels(latents, conditions):
        arrays = [np.asarray(latents, "float32"), np.asarray(conditions, "float32")]
        if runtime == "litertjs":  # Python's LiteRT on the very file the page runs
            from tinkerflow.exporters.runtime import load

            lite = load(dcgan_run / "export" / "tflite" / variant)
            out = lite.predict_named(dict(zip(["latent", "condition"], arrays)))[lite.output_names[0]]
        else:
            out = keras.ops.convert_to_numpy(generator(arrays, training=False))
        return np.clip(np.round(out), 0, 255)

    out = tmp_path / "site"
    report = build_site([dcgan_run], out, make_plugin_manager())
    with serving(out) as base:
        watched = Watched(request.getfixturevalue("webgpu_browser") if accelerator else browser, phone=True)
        slug = report.pages[0]["slug"]
        page = watched.open_ready(f"{base}models/{slug}/index.html?runtime={runtime}&variant={variant}"
                                  + (f"&accelerator={accelerator}" if accelerator else ""))
        assert page.locator("body").get_attribute("data-variant") == variant
        if runtime == "litertjs":
            assert page.locator("body").get_attribute("data-backend").startswith(accelerator or "wasm")
        widget = page.locator("#widget")
        latents = json.loads(widget.get_attribute("data-latents"))
        conditions = np.array(json.loads(widget.get_attribute("data-conditions")))
        assert len(latents) == 16 and conditions.shape == (16, 8)
        assert conditions.argmax(1).tolist() == [i % 8 for i in range(16)]
        drawn = tiles(page, "#dcgan-grid", 16, 4, 16)
        assert np.abs(drawn - python_pixels(latents, conditions)).max() <= 1, "the page draws the generator's pixels"

        page.select_option("#dcgan-conditions select", "blue")
        page.click("#dcgan-generate")
        expect(widget).to_have_attribute("data-generated", "2")
        blue = np.array(json.loads(widget.get_attribute("data-conditions")))
        assert set(blue.argmax(1).tolist()) == {5}, "every image asks for blue"
        latents = np.array(json.loads(widget.get_attribute("data-latents")))
        box = page.locator("#dcgan-grid").bounding_box()
        scale = box["width"] / (4 * 18 + 2)
        for k in (0, 5):  # click the centres of tiles 1 and 6
            page.mouse.click(box["x"] + (2 + (k % 4) * 18 + 8) * scale, box["y"] + (2 + (k // 4) * 18 + 8) * scale)
        page.fill("#dcgan-walk-t", "0.5")
        page.dispatch_event("#dcgan-walk-t", "input")
        expect(widget).to_have_attribute("data-walk", json.dumps({"from": 0, "to": 5, "t": 0.5}).replace(" ", ""))
        page.wait_for_timeout(200)
        walked = tiles(page, "#dcgan-walk-image", 1, 1, 16)
        middle = python_pixels([slerp(latents[0], latents[5], 0.5)], blue[:1])
        assert np.abs(walked - middle).max() <= 1, "the walk is the spherical interpolation of the two latents"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"dcgan-phone-{runtime}{accelerator}-{variant}.png"), full_page=True)
        watched.close(base)


# -- the captioner page and telephone in the browser ----------------------------------------------------

@pytest.fixture(scope="module")
def telephone_runs(tmp_path_factory):
    from test_captions import colour_photos

    from tinkerflow.exporters.pipeline import export_run

    root = tmp_path_factory.mktemp("telephone")
    photos = colour_photos(root / "photos")
    data = ["data=coco", f"data.images={photos}", f"data.captions={photos / 'captions.json'}",
            "experiment.image_size=16", "trainer.checkpoint_seconds=0"]
    captioner = train_in_process(root / "runs", "experiment=captioning", *data, "experiment.caption_length=5",
                                 "experiment.units=16", "experiment.embedding_dim=8", "trainer.epochs=30",
                                 "trainer.batch_size=8", "trainer.learning_rate=0.01",
                                 "trainer.early_stopping.enabled=false")
    painter = train_in_process(root / "runs", "experiment=text_to_image", *data, "model.width=8", "model.latent_dim=8",
                               "model.condition_embedding=8", "trainer.batch_size=16", "trainer.epochs=3",
                               "experiment.bigrams=true", "experiment.normalise=false")  # pages encode pairs and counts
    for run_dir in (captioner, painter):
        assert export_run(run_dir, make_plugin_manager(), ["tfjs", "tflite"], ["float32"]).ok
    return photos, captioner, painter


@pytest.mark.parametrize("runtime", ["litertjs", "tfjs"])
def test_captioner_page_captions_and_plays_telephone_as_python_does(browser, telephone_runs, tmp_path, runtime):
    from PIL import Image
    from playwright.sync_api import expect

    from tinkerflow.core.runs import open_run
    from tinkerflow.plugins.captioning import captions as caps
    from tinkerflow.plugins.captioning.telephone import play
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    photos, captioner, painter = telephone_runs
    start = photos / "5.png"
    run, experiment = open_run(captioner, make_plugin_manager())
    model = run.load_model(experiment.custom_objects())
    from tinkerflow.plugins.captioning.decode import beam_search

    with Image.open(start) as image:
        prepared = caps.square(image, 16)
    expected_caption = experiment.greedy(model, prepared[None].astype("float32"))[0]
    step, state_for = experiment.stepper(model)
    ids = experiment.vocab.index
    best = beam_search(step, state_for(prepared), ids[caps.START], ids[caps.END], 4, width=3,
                       banned=(ids[caps.PAD], ids[caps.START], ids[caps.UNKNOWN]))
    expected_beam = experiment.vocab.decode(best[0][0])
    told = "a <b>red</b> square above a green square"
    game = play(captioner, painter, start, told, rounds=3, games=1, seed=2, out=tmp_path / "game",
                registry=make_plugin_manager(), temperature=0.0)
    expected_game = [r["caption"] for r in game["games"][0]["rounds"]]
    expected_keeps = [r["caption_keeps"] for r in game["games"][0]["rounds"]]
    assert expected_keeps[0]["relation"] is not None, "the start states a relation, so its survival is scored"

    out = tmp_path / "site"
    report = build_site([captioner, painter], out, make_plugin_manager())
    slug = next(p["slug"] for p in report.pages if p["experiment"] == "captioning")
    with serving(out) as base:
        watched = Watched(browser, phone=True)
        page = watched.open_ready(f"{base}models/{slug}/index.html?runtime={runtime}")
        assert page.locator("body").get_attribute("data-runtime") == runtime
        widget = page.locator("#widget")
        page.set_input_files("#captioner-file", str(start))
        expect(widget).to_have_attribute("data-done", "true", timeout=60_000)
        assert widget.get_attribute("data-caption") == expected_caption, "greedy caption as in Python"
        page.select_option("#captioner-decoding", "beam")
        page.set_input_files("#captioner-file", [])
        page.set_input_files("#captioner-file", str(start))
        expect(widget).to_have_attribute("data-done", "true", timeout=60_000)
        assert widget.get_attribute("data-caption") == expected_beam, "beam search as in Python"
        expect(page.locator("#telephone")).to_be_visible()
        page.fill("#telephone-text", told)
        page.fill("#telephone-rounds", "3")
        page.fill("#telephone-seed", "2")
        page.click("#telephone-play")
        expect(widget).to_have_attribute("data-telephone", "done", timeout=60_000)
        assert json.loads(widget.get_attribute("data-telephone-captions")) == expected_game, \
            "the same seed plays the same game in the browser as in Python"
        kept = json.loads(widget.get_attribute("data-telephone-keeps"))
        assert kept == [pytest.approx(k, abs=1e-4) for k in expected_keeps], "the same per-round truth as Python's"
        assert page.locator(".telephone-keeps").count() == 3
        assert page.locator("#telephone-rounds-list li").count() == 3 and page.locator("#widget b").count() == 1
        page.screenshot(path=str(ARTIFACTS / f"telephone-phone-{runtime}.png"), full_page=True)
        watched.close(base)


@pytest.mark.parametrize("runtime", ["litertjs", "tfjs"])
def test_painter_page_paints_what_python_paints(browser, telephone_runs, tmp_path, runtime):
    from playwright.sync_api import expect

    from tinkerflow.core.runs import open_run
    from tinkerflow.exporters.runtime import load
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    _, _, painter = telephone_runs
    out = tmp_path / "site"
    report = build_site([painter], out, make_plugin_manager())
    with serving(out) as base:
        watched = Watched(browser, phone=True)
        page = watched.open_ready(f"{base}models/{report.pages[0]['slug']}/index.html?runtime={runtime}")
        widget = page.locator("#widget")
        page.fill("#painter-text", "a red dot, <b>red</b>")
        page.fill("#painter-seed", "3")
        page.click("#painter-paint")
        expect(widget).to_have_attribute("data-painted", "2")
        latents = np.array(json.loads(widget.get_attribute("data-latents")), "float32")
        drawn = np.stack([tiles(page, f"#painter-images canvas:nth-child({k + 1})", 1, 1, 16, gap=0)[0]
                          for k in range(4)])
        assert page.locator("#widget b").count() == 0
        watched.close(base)
    run, experiment = open_run(painter, make_plugin_manager())
    condition = np.repeat(experiment.condition("a red dot, <b>red</b>")[None], 4, axis=0)
    assert condition[0, experiment.vocab.index["red dot"]] == 1 and condition[0, experiment.vocab.index["red"]] == 2
    if runtime == "litertjs":
        lite = load(painter / "export" / "tflite" / "float32")
        pixels = lite.predict_named({"latent": latents, "condition": condition})[lite.output_names[0]]
    else:
        generator = experiment.export_model(run.load_model(experiment.custom_objects()))
        pixels = import_keras().ops.convert_to_numpy(generator([latents, condition], training=False))
    assert np.abs(drawn - np.clip(np.round(pixels), 0, 255)).max() <= 1, "the page paints the generator's pixels"


# -- markup through every text path ---------------------------------------------------------------

def _evil(token: str) -> str:
    """``token`` dressed as markup that would show up as an element of class 'pwned' (and set
    ``window.pwned`` or fetch a missing image) if a page ever parsed it as HTML."""
    forms = ('<img/src=x/class=pwned/onerror=pwned=1>{}', '<script>pwned=1</script>{}', '"><b/class=pwned>{}')
    return forms[len(token) % len(forms)].format(token)


def _poison(run_dir: Path, vocabulary_keys=("vocabulary", "labels", "positive_label")) -> None:
    """Markup in what a run shows: its vocabulary or labels in every export manifest, its config,
    data description, metrics and versions in run.json, a metrics.csv column."""
    def dress(value):
        if isinstance(value, str) and not (value.startswith("<") and value.endswith(">")) and value != "\n":
            return _evil(value)
        return value

    def walk(node):
        if isinstance(node, dict):
            return {k: ([dress(v) for v in value] if isinstance(value, list) and k in vocabulary_keys
                        else dress(value) if k in vocabulary_keys else walk(value)) for k, value in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    for manifest in (run_dir / "export").rglob("manifest.json"):
        manifest.write_text(json.dumps(walk(json.loads(manifest.read_text()))))
    info = json.loads((run_dir / "run.json").read_text())
    info["config"]["experiment"][_evil("knob")] = _evil("value")
    info["data"] = {**(info.get("data") or {}), _evil("source"): _evil("a corpus line")}
    info["metrics"] = {_evil("metric"): 1.0, **info["metrics"]}
    info["versions"] = {**info["versions"], _evil("package"): _evil("1.0")}
    (run_dir / "run.json").write_text(json.dumps(info))
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    (run_dir / "metrics.csv").write_text("\n".join([rows[0] + "," + _evil("val_metric").replace(",", ";")]
                                                   + [row + ",0.5" for row in rows[1:]]) + "\n")


# -- embeds in other sites' pages -------------------------------------------------------------------

@contextlib.contextmanager
def blog(folder: Path, frames: str, frame_origin: str, script: str = ""):
    """Someone else's site on another origin: a post with ``frames`` pasted in, under a strict
    CSP of its own that allows frames from ``frame_origin`` and nothing else of anyone's."""
    from PIL import Image

    from tinkerflow.web_export.serve import serving

    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), "teal").save(folder / "icon.png")
    (folder / "index.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="default-src \'self\'; frame-src {frame_origin}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>my blog</title>'
        f'<link rel="icon" href="icon.png">{script}</head><body><h1>A post</h1><p>Text before the models.</p>'
        f'{frames}<p>Text after.</p></body></html>')
    with serving(folder, isolated=False) as base:  # a plain static host: no isolation headers
        yield f"{base}index.html"


def frame_fits(frame) -> dict:
    """How the embed view sits in its frame: nothing scrolls, nothing is cut off."""
    return frame.evaluate("""() => {
        const d = document.documentElement, r = document.getElementById('embed').getBoundingClientRect();
        return { scrolls: d.scrollHeight > d.clientHeight + 1 || d.scrollWidth > d.clientWidth + 1,
                 cut: r.bottom > d.clientHeight + 1 || r.right > d.clientWidth + 1,
                 zoom: Number(document.body.dataset.embedZoom),
                 height: Number(document.body.dataset.embedHeight) }; }""")


def test_embeds_run_in_another_sites_page_with_its_strict_csp(browser, lyrics_run, classifier_run, tmp_path):
    from PIL import Image
    from playwright.sync_api import expect
    from test_classifier import photo

    from tinkerflow.core.runs import open_run
    from tinkerflow.plugins.lyrics.generate import generate
    from tinkerflow.web_export import build_site

    root = tmp_path / "models-host"
    lyrics_site = build_site([lyrics_run], root / "user" / "project", make_plugin_manager())
    embed_dir = root / "blog" / "static" / "classifier"  # 'tinkerflow web RUN --embed DIR'
    done = run_cli("web", str(classifier_run), "--embed", str(embed_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    classifier_embed = next(p for p in (embed_dir / "models").iterdir())
    assert "ADDRESS/models/" in done.stdout and '<iframe src="ADDRESS/models/' in done.stdout
    picture = tmp_path / "blend.jpg"
    Image.blend(photo("mila", 5, size=(160, 100)), photo("other", 6, size=(160, 100)), 0.45).save(picture, quality=92)
    prompt = "hello world"

    with host(root, root / "user" / "project") as models:
        full = Watched(browser)
        page = full.open_ready(f"{models}user/project/{lyrics_site.pages[0]['embed'].replace('embed', 'index')}")
        lyrics_snippet = page.locator("#embed-snippet").text_content()
        page.click("#embed-copy")
        src = f"{models}user/project/{lyrics_site.pages[0]['embed']}"
        assert lyrics_snippet.startswith(f'<iframe src="{src}" title="lyrics · ') and 'height="560"' in lyrics_snippet
        page = full.open_ready(f"{models}blog/static/classifier/models/{classifier_embed.name}/index.html")
        classifier_snippet = page.locator("#embed-snippet").text_content()
        page.set_input_files("#classifier-file", str(picture))
        expect(page.locator("#widget")).to_have_attribute("data-done", "true", timeout=60_000)
        full_page_scores = page.locator("#widget").get_attribute("data-probabilities")
        full.close(models)

        with blog(tmp_path / "blog", lyrics_snippet + classifier_snippet, models.rstrip("/")) as post:
            for viewport in ({"width": 390, "height": 844}, {"width": 1100, "height": 900}):
                watched = Watched(browser, viewport=viewport)
                watched.page.goto(post)
                lyrics = watched.page.frame_locator("iframe[src*='lyrics']")
                classifier = watched.page.frame_locator("iframe[src*='classifier']")
                for frame in (lyrics, classifier):
                    expect(frame.locator("body")).to_have_attribute("data-ready", "true", timeout=90_000)
                frames = {f.name or f.url: f for f in watched.page.frames[1:]}
                lyrics_frame = next(f for u, f in frames.items() if "lyrics" in u)
                classifier_frame = next(f for u, f in frames.items() if "classifier" in u)
                assert "default-src 'self'" in lyrics_frame.evaluate(
                    "() => document.querySelector('meta[http-equiv=Content-Security-Policy]').content"), "its own CSP"

                lyrics.locator("#lyrics-prompt").fill(prompt)
                lyrics.locator("#lyrics-temperature").fill("0")
                lyrics.locator("#lyrics-words").fill("25")
                lyrics.locator("#lyrics-write").click()
                expect(lyrics.locator("#widget")).to_have_attribute("data-done", "true", timeout=60_000)
                words = json.loads(lyrics.locator("#widget").get_attribute("data-words"))
                lyrics_predictions = lyrics.locator("body").get_attribute("data-predictions")
                classifier.locator("#classifier-file").set_input_files(str(picture))
                expect(classifier.locator("#widget")).to_have_attribute("data-done", "true", timeout=60_000)
                assert classifier.locator("#widget").get_attribute("data-probabilities") == full_page_scores, \
                    "the embed answers as the full page does"
                assert json.loads(lyrics.locator("#widget").get_attribute("data-words")) == words, \
                    "two embeds on one page do not touch each other"
                assert lyrics.locator("body").get_attribute("data-predictions") == lyrics_predictions
                assert classifier.locator("body").get_attribute("data-predictions") == "1"
                for frame in (lyrics_frame, classifier_frame):
                    expect(frame.locator("body")).to_have_attribute("data-offline", "ready", timeout=60_000)
                    expect(frame.locator("body")).to_have_attribute("data-embed-height", re.compile(r"\d+"))
                    fits = frame_fits(frame)
                    assert not fits["scrolls"] and not fits["cut"], (viewport, frame.url, fits)
                    assert fits["zoom"] >= 0.8, f"the snippet's height suits the widget: {frame.url} {fits}"
                reached = watched.page.evaluate("""() => [...document.querySelectorAll('iframe')].map((f) => {
                    const w = f.contentWindow, tries = [() => w.document.body.innerHTML, () => w.tinkerflow.predict,
                      () => w.document.querySelector('textarea, input').value, () => w.localStorage.length];
                    w.postMessage({ tinkerflowEmbedHeight: 99999, predict: true }, '*');
                    return tries.map((t) => { try { t(); return 'reached'; } catch (e) { return e.name; } }); })""")
                assert reached == [["SecurityError"] * 4] * 2, f"the post's scripts reach into a widget: {reached}"
                watched.page.screenshot(path=str(ARTIFACTS / f"embed-blog-{viewport['width']}.png"), full_page=True)
                watched.close((post.rsplit("/", 1)[0], models))

    run, experiment = open_run(lyrics_run, make_plugin_manager())
    model = run.load_model(experiment.custom_objects())
    assert words == generate(experiment.predictor(model), experiment.vocab, prompt, 25, experiment.config.window,
                             temperature=0.0), "the embed writes the words Python writes"


def test_embed_of_one_run_a_moved_model_and_a_host_that_sizes_its_frames(browser, runs, tmp_path):
    from playwright.sync_api import expect

    from tinkerflow.web_export.html import esc

    run = runs["addition"]
    embed_dir = tmp_path / "host" / "static" / "addition"
    done = run_cli("web", str(run), "--embed", str(embed_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((embed_dir / "site.json").read_text())
    assert [r["name"] for r in record["pages"][0]["runtimes"]] == ["litertjs"], "only the runtime it runs"
    assert sorted(p.name for p in (embed_dir / "assets").iterdir() if p.is_dir()) == ["litertjs"]
    slug = record["pages"][0]["slug"]
    assert sorted(p.name for p in (embed_dir / "models" / slug).iterdir()) == ["embed.html", "index.html", "tflite",
                                                                                 "widget"]
    snippet = next(line for line in done.stdout.splitlines() if line.startswith("<iframe"))
    assert snippet == (f'<iframe src="ADDRESS/models/{slug}/embed.html" title="{esc("addition · " + run.name)} '
                       '(tinkerflow)" width="100%" height="520" frameborder="0" loading="lazy" allow="camera">'
                       '</iframe>')
    two = run_cli("web", str(run), str(runs["sine"]), "--embed", str(tmp_path / "two"), cwd=tmp_path)
    assert two.returncode == 2 and "--embed takes one run; got 2" in two.stderr and not (tmp_path / "two").exists()

    with host(tmp_path / "host", embed_dir) as models:
        address = f"{models}static/addition"
        frames = snippet.replace("ADDRESS", address) + snippet.replace("ADDRESS", address).replace(slug, "moved-away")
        (tmp_path / "blog").mkdir()
        shutil.copy(REPO / "web_export" / "assets" / "embed-resize.js", tmp_path / "blog" / "embed-resize.js")
        with blog(tmp_path / "blog", frames, models.rstrip("/"), '<script src="embed-resize.js"></script>') as post:
            watched = Watched(browser, phone=True)
            watched.page.goto(post)
            working = watched.page.frame_locator("iframe >> nth=0")
            moved = watched.page.frame_locator("iframe >> nth=1")
            expect(moved.locator("#not-found")).to_have_text(re.compile(
                r"^This tinkerflow model is not at this address: it was moved, removed or rebuilt under another name"))
            expect(working.locator("body")).to_have_attribute("data-ready", "true", timeout=90_000)
            working.locator("#addition-a").fill("3")
            working.locator("#addition-b").fill("5")
            x = np.array([[3, 5]], dtype="float32")
            variant = working.locator("body").get_attribute("data-variant")
            answer = litert_reference(run, variant, x)[0][0]
            expect(working.locator("#addition-answer")).to_have_text(f"{answer:.2f}")
            # the post runs embed-resize.js: the frame becomes as tall as its content, which is not scaled
            natural = working.locator("body").get_attribute("data-embed-height")
            expect(watched.page.locator("iframe >> nth=0")).to_have_attribute("height", natural)
            expect(working.locator("body")).to_have_attribute("data-embed-zoom", "1")
            working.locator("details.embed-controls summary").click()  # the menus unfold: the frame grows
            expect(watched.page.locator("iframe >> nth=0")).not_to_have_attribute("height", natural)
            frame = next(f for f in watched.page.frames if f.url.endswith("embed.html"))
            fits = frame_fits(frame)
            assert not fits["scrolls"] and not fits["cut"] and fits["zoom"] == 1, fits
            watched.close((post.rsplit("/", 1)[0], models), expected=("moved-away", "status of 404"))


def test_every_widget_fits_the_frame_its_snippet_gives_it(browser, runs, lyrics_run, classifier_run, dcgan_run,
                                                           telephone_runs, tmp_path):
    """Each built-in experiment's embed view, in a frame of its ``embed_height`` at a phone's
    and a desktop column's width: the widget whole, unscaled, nothing scrolling."""
    from playwright.sync_api import expect

    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    _, captioner, painter = telephone_runs
    report = build_site([runs["addition"], lyrics_run, classifier_run, dcgan_run, captioner, painter],
                        tmp_path / "site", make_plugin_manager())
    plugins = make_plugin_manager()
    with serving(tmp_path / "site") as base:
        for entry in report.pages:
            height = plugins.experiment(entry["experiment"]).embed_height
            assert f'height="{height}"' in entry["config"]["embed"]["snippet"]
            for width in (360, 700):
                watched = Watched(browser, viewport={"width": width, "height": height})
                page = watched.open_ready(f"{base}{entry['embed']}")
                expect(page.locator("body")).to_have_attribute("data-embed-zoom", "1")
                fits = frame_fits(page)
                assert not fits["scrolls"] and not fits["cut"] and fits["height"] <= height, (entry["experiment"],
                                                                                             width, fits)
                watched.close(base)


def test_markup_in_every_text_path_stays_text_in_chromium(browser, lyrics_run, classifier_run, telephone_runs,
                                                         tmp_path):
    """Corpus words, labels, captions, config values, data descriptions, metric names, run folder
    names: each carries markup into a real page, which must show it as text and run none of it."""
    from playwright.sync_api import expect

    from tinkerflow.core.plugins import register_plugin
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    photos, captioner, painter = telephone_runs
    runs = {}
    for name, source in (("lyrics", lyrics_run), ("classifier", classifier_run), ("captioning", captioner),
                         ("text_to_image", painter)):
        runs[name] = tmp_path / "runs" / name / _evil(f"run-{name}").replace("/", "|")
        shutil.copytree(source, runs[name])
        _poison(runs[name])
    out = tmp_path / "site"
    report = build_site(list(runs.values()), out, make_plugin_manager())
    slugs = {p["experiment"]: p["slug"] for p in report.pages}
    assert len(slugs) == 4 and all("<" not in s and "/" not in s for s in slugs.values())

    def clean(page, where: str) -> str:
        assert page.locator(".pwned").count() == 0, f"{where}: markup became elements"
        assert page.evaluate("() => window.pwned") is None, f"{where}: a script ran"
        return page.locator("body").inner_text()

    dialogs = []
    payloads = 0
    with serving(out) as base:
        watched = Watched(browser, viewport={"width": 1000, "height": 900})
        watched.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page = watched.open_ready(f"{base}models/{slugs['lyrics']}/index.html")
        snippet = page.locator("#embed-snippet").text_content()
        assert html.escape(_evil("run-lyrics").replace("/", "|")) in snippet, "the snippet's title is escaped HTML"
        page.goto(f"{base}index.html")
        text = clean(page, "index")
        assert _evil("run-lyrics").replace("/", "|") in text
        page = watched.open_ready(f"{base}models/{slugs['lyrics']}/embed.html")
        assert _evil("run-lyrics").replace("/", "|") in clean(page, "the embed view")
        payloads += 3

        page = watched.open_ready(f"{base}models/{slugs['lyrics']}/index.html")
        page.fill("#lyrics-prompt", f"{_evil('hello')} {_evil('world')}")
        page.fill("#lyrics-temperature", "0")
        page.fill("#lyrics-words", "12")
        page.click("#lyrics-write")
        expect(page.locator("#widget")).to_have_attribute("data-done", "true", timeout=60_000)
        words = json.loads(page.locator("#widget").get_attribute("data-words"))
        text = clean(page, "lyrics")
        assert all(w in text for w in words if w != "\n") and any("pwned" in w for w in words)
        for shown in ("knob", "value", "source", "a corpus line", "metric", "package", "1.0"):
            assert _evil(shown) in text, f"{shown} is shown as text"
        payloads += 7 + len(words)

        page = watched.open_ready(f"{base}models/{slugs['classifier']}/index.html")
        from test_classifier import photo

        photo("mila", 3).save(tmp_path / "dog.jpg", quality=92)
        page.set_input_files("#classifier-file", str(tmp_path / "dog.jpg"))
        expect(page.locator("#widget")).to_have_attribute("data-done", "true", timeout=60_000)
        text = clean(page, "classifier")
        assert _evil(DOG) in text and _evil(OTHER) in text
        payloads += 2

        page = watched.open_ready(f"{base}models/{slugs['captioning']}/index.html")
        page.set_input_files("#captioner-file", str(photos / "5.png"))
        expect(page.locator("#widget")).to_have_attribute("data-done", "true", timeout=60_000)
        caption = page.locator("#widget").get_attribute("data-caption")
        assert "pwned" in caption and caption in clean(page, "captioner")
        page.fill("#telephone-text", f"{_evil('red')} {_evil('dot')}")
        page.fill("#telephone-rounds", "2")
        page.click("#telephone-play")
        expect(page.locator("#widget")).to_have_attribute("data-telephone", "done", timeout=60_000)
        captions = json.loads(page.locator("#widget").get_attribute("data-telephone-captions"))
        text = clean(page, "telephone")
        assert all(c in text for c in captions)
        payloads += 2 + len(captions)
        watched.close(base)
    assert not dialogs, dialogs

    from tinkerflow.core import Experiment

    class Named(Experiment):
        name = "<b>pwned</b>"

    plugin = types.ModuleType("evil_plugin")
    plugin.register_experiments = hookimpl(lambda register: register(Named))
    registry = make_plugin_manager({})
    register_plugin(registry, plugin, "evil")
    assert "expected lowercase letters, digits and underscores" in registry.plugins["evil"].error
    assert Named.name not in registry.experiments, "an experiment name is never markup: it is refused"
    print(f"\n{payloads} injected texts shown as text, none ran")


# -- an installable site that works offline ----------------------------------------------------------

def test_the_site_is_an_installable_app_with_its_own_icons(site):
    from PIL import Image

    _, out, report = site
    manifest = json.loads((out / "manifest.webmanifest").read_text())
    assert manifest["start_url"] == "./index.html" and manifest["scope"] == "./" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        size = int(icon["sizes"].split("x")[0])
        assert Image.open(out / icon["src"]).size == (size, size), icon
    assert {i["purpose"] for i in manifest["icons"]} == {"any", "maskable"}
    worker = (out / "sw.js").read_text()
    assert f'const VERSION = "{report.version}";' in worker and len(report.version) == 16
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", worker).group(1))
    assert all((out / path).is_file() for path in shell) and "index.html" in shell
    for page in [out / "index.html", *out.glob("models/*/index.html")]:
        head = page.read_text().split("</head>")[0]
        assert 'rel="manifest"' in head and "assets/offline.js" in head and "https://" not in head


def addition_answer(page, a: int, b: int) -> str:
    from playwright.sync_api import expect

    page.fill("#addition-a", str(a))
    page.fill("#addition-b", str(b))
    expect(page.locator("#addition-true")).to_have_text(str(a + b))
    expect(page.locator("#addition-answer")).not_to_have_text("…")
    return page.locator("#addition-answer").text_content()


def test_a_visited_page_works_offline_and_a_rebuild_is_never_served_stale(browser, runs, tmp_path):
    from playwright.sync_api import expect

    from tinkerflow.exporters.pipeline import export_run
    from tinkerflow.web_export import build_site

    registry = make_plugin_manager()
    root = tmp_path / "host"
    one, other = root / "user" / "one", root / "user" / "other"
    first = build_site([runs["addition"]], one, registry)
    elsewhere = build_site([runs["sine"]], other, registry)
    slug = first.pages[0]["slug"]
    with host(root, one) as base:
        watched = Watched(browser, phone=True)
        page = watched.open_ready(f"{base}user/one/models/{slug}/index.html?runtime=litertjs")
        expect(page.locator("body")).to_have_attribute("data-offline-version", first.version, timeout=60_000)
        expect(page.locator("#offline-state")).to_have_text("✓ works offline")
        online = addition_answer(page, 3, 4)

        watched.context.set_offline(True)
        page.reload()
        watched.wait_ready()
        assert addition_answer(page, 3, 4) == online, "the same answer from the stored copy"
        expect(page.locator("#offline-state")).to_have_text("offline: running from this device's copy")
        page.goto(f"{base}user/one/index.html")
        expect(page.locator(".card")).to_have_count(1)
        watched.context.set_offline(False)

        other_page = watched.context.new_page()
        other_page.goto(f"{base}user/other/index.html")
        expect(other_page.locator("body")).to_have_attribute("data-offline", "ready", timeout=60_000)
        caches = sorted(page.evaluate("caches.keys()"))
        assert caches == sorted([f"tinkerflow {base}user/one/ {first.version}",
                                 f"tinkerflow {base}user/other/ {elsewhere.version}"]), "one cache per site and path"

        # the same run name, another model: the rebuilt site's pages have the very same URLs
        retrained = train_in_process(tmp_path / "b", "experiment.max_sum=16", "experiment.samples=500",
                                     "trainer.epochs=1", "seed=9")
        twin = retrained.parent / runs["addition"].name
        retrained.rename(twin)
        assert export_run(twin, registry, ["tflite", "tfjs"], ["float32"]).ok
        second = build_site([twin], one, registry, force=True)
        assert second.pages[0]["slug"] == slug and second.version != first.version
        page.goto(f"{base}user/one/models/{slug}/index.html?runtime=litertjs")
        watched.wait_ready()
        expect(page.locator("body")).to_have_attribute("data-offline-version", second.version, timeout=60_000)
        fresh = litert_reference(twin, "float32", np.array([[3, 4]], "float32"))[0][0]
        assert addition_answer(page, 3, 4) == f"{fresh:.2f}" != online, "the new model answers, not the stored one"
        expect(page.locator("body")).to_have_attribute("data-offline", "ready")
        names = page.evaluate("caches.keys()")
        assert f"tinkerflow {base}user/one/ {second.version}" in names
        assert f"tinkerflow {base}user/one/ {first.version}" not in names, "the old version's copy is gone"
        assert any(n.startswith(f"tinkerflow {base}user/other/ ") for n in names), "the other site's copy stays"
        watched.context.set_offline(True)
        page.reload()
        watched.wait_ready()
        assert addition_answer(page, 3, 4) == f"{fresh:.2f}", "offline, the new model's copy"
        watched.context.set_offline(False)
        watched.close(base)

"""The gallery in a real browser: Debian's headless Chromium driven by Selenium, nothing downloaded.

This test fails (it never skips) when chromium or chromium-driver is missing: install them with
`apt-get install -y --no-install-recommends chromium chromium-driver` (.ci/run does). Screenshots go to
$DPIQA_ARTIFACTS (default: the test's tmp folder).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_fixtures import Browser, missing_browser
from gallery_fixtures import HOSTILE, HOSTILE_FAILED, make_photos, three_failures, write_scores

from dpiqa_cli.gallery import build_gallery
from dpiqa_cli.gallery.build import thumbs_dir

N = 60
FILE_NOT_FOUND = "ERR_FILE_NOT_FOUND"  # the console line of a deliberately deleted thumbnail


@pytest.fixture(scope="module")
def browser():
    why = missing_browser()
    if why:
        pytest.fail(f"the gallery browser test needs Chromium: {why}")
    with Browser((1280, 900)) as b:
        yield b


@pytest.fixture(scope="module")
def sixty(tmp_path_factory):
    """60 generated photos (one with a hostile name), scored, plus 3 failures (one hostile)."""
    root = tmp_path_factory.mktemp("sixty")
    paths = make_photos(root / "photos", N, seed=1)
    df = write_scores(paths, root / "scores.csv", seed=1, failed=three_failures(root / "photos"))
    return root, df


@pytest.fixture
def artifacts(tmp_path) -> Path:
    d = Path(os.environ.get("DPIQA_ARTIFACTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def wait(driver, cond, timeout=20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(cond)


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def fmt_kb(path) -> str:
    return f"{os.path.getsize(path) / 1024:.0f} KB"


def load_every_thumbnail(driver) -> None:
    """Scroll each lazy thumbnail into view, then wait until all have decoded."""
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        (async () => {
          for (const img of [...document.querySelectorAll('#grid img')]) {  // a snapshot: a lost one is replaced
            img.scrollIntoView({block: 'center'});
            await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
          }
          done();
        })();""")
    wait(driver, lambda d: js(d, "return [...document.querySelectorAll('#grid img')].every(i => i.complete)"))


@pytest.mark.parametrize("mode", ["inline", "folder"])
def test_gallery_of_sixty(browser, sixty, artifacts, tmp_path, mode):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    root, df = sixty
    out = tmp_path / f"gallery-{mode}.html"
    s = build_gallery(root / "scores.csv", out, mode=mode, workers=2, progress=False)
    assert s["mode"] == mode
    d = browser.driver
    browser.open(out)

    cards = d.find_elements(By.CSS_SELECTOR, "#grid .card")
    assert len(cards) == N
    alts = js(d, "return [...document.querySelectorAll('#grid .card img')].slice(0, 5).map(i => i.alt)")
    assert alts == list(df["path"][:5]), "first five in rank order, alt text is the path"
    assert js(d, "return [...document.querySelectorAll('#grid .rank')].slice(0, 5).map(e => e.textContent)") == \
        ["#1", "#2", "#3", "#4", "#5"]
    badge = d.find_element(By.CSS_SELECTOR, "#grid .card .badge").text
    assert badge == f"{df['score'].iloc[0]:.3f}"
    w, h = df["width"].iloc[0], df["height"].iloc[0]
    assert d.find_element(By.CSS_SELECTOR, "#grid .card .mos").text == f"MOS {df['mos'].iloc[0]:.3f}"
    assert d.find_element(By.CSS_SELECTOR, "#grid .card .size").text == f"{w} × {h} · {fmt_kb(df['path'].iloc[0])}"

    load_every_thumbnail(d)
    widths = js(d, "return [...document.querySelectorAll('#grid img')].map(i => i.naturalWidth)")
    assert len(widths) == N and all(w > 0 for w in widths), "every thumbnail loaded"
    # best and worst strips: a second look at the ends of the ranking
    assert js(d, "return document.querySelector('#worst .card img').alt") == df["path"].iloc[-1]

    num = d.find_element(By.ID, "thr-num")
    num.clear()
    num.send_keys("0.5")
    want = int((df["score"] < 0.5).sum())
    wait(d, lambda d: d.find_element(By.ID, "thr-count").get_attribute("data-count") == str(want))
    assert d.find_element(By.ID, "thr-count").text.startswith(f"{want} of {N} photos score below 0.500")
    assert float(d.find_element(By.ID, "thr-range").get_attribute("value")) == pytest.approx(0.5)
    assert len(d.find_elements(By.CSS_SELECTOR, "#grid .card.below")) == want
    d.find_element(By.ID, "thr-range").send_keys(Keys.ARROW_RIGHT)  # the slider by keyboard: +0.001
    want2 = int((df["score"] < 0.501).sum())
    wait(d, lambda d: d.find_element(By.ID, "thr-count").get_attribute("data-count") == str(want2))
    assert d.find_element(By.ID, "thr-num").get_attribute("value") == "0.501"

    rows = js(d, "return [...document.querySelectorAll('#fail-body tr')].map(r => [...r.cells].map(c => c.textContent))")
    assert rows == [[p, r] for p, r in sorted(three_failures(root / "photos").items())]
    assert d.find_element(By.ID, "fail-title").text == "Failed files (3)"

    hostile = js(d, "return [...document.querySelectorAll('#grid .name')].filter(e => e.title.endsWith(arguments[0]))"
                    ".map(e => e.textContent)", HOSTILE)
    assert hostile == [HOSTILE], "the hostile name is shown as text"
    assert any(HOSTILE_FAILED in r[0] for r in rows)
    assert js(d, "return document.querySelectorAll('img[src=\"x\"], #grid script, #fail-body script').length") == 0
    assert js(d, "return window.__alerts") == [] and js(d, "return window.__pwned === undefined")
    with pytest.raises(NoAlertPresentException):
        d.switch_to.alert.text  # noqa: B018
    assert browser.console_errors() == [], "no script or style was blocked, nothing failed to load"

    js(d, "window.scrollTo(0, 0)")
    shot = artifacts / f"gallery-{mode}.png"
    d.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_sort_filter_pages_and_keyboard(browser, sixty, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    root, df = sixty
    out = tmp_path / "g.html"
    build_gallery(root / "scores.csv", out, page_size=25, workers=2, progress=False)
    d = browser.driver
    browser.open(out)
    names = lambda: js(d, "return [...document.querySelectorAll('#grid .name')].map(e => e.textContent)")  # noqa: E731
    ranks = lambda: js(d, "return [...document.querySelectorAll('#grid .rank')].map(e => e.textContent)")  # noqa: E731
    assert len(names()) == 25 and d.find_element(By.ID, "page-info").text == "Page 1 of 3"

    d.find_element(By.ID, "next").click()
    assert ranks()[0] == "#26" and d.find_element(By.ID, "page-info").text == "Page 2 of 3"
    d.find_element(By.TAG_NAME, "body").send_keys("n")  # keyboard: next page
    assert len(ranks()) == 10 and ranks()[-1] == f"#{N}"

    Select(d.find_element(By.ID, "sort")).select_by_value("name")
    all_names = sorted((Path(p).name for p in df["path"]), key=str.lower)
    assert names() == all_names[:25] and d.find_element(By.ID, "page-info").text == "Page 1 of 3"
    Select(d.find_element(By.ID, "sort")).select_by_value("worst")
    assert ranks()[:3] == [f"#{N}", f"#{N - 1}", f"#{N - 2}"]
    Select(d.find_element(By.ID, "sort")).select_by_value("best")

    d.find_element(By.TAG_NAME, "body").send_keys("/")
    assert js(d, "return document.activeElement.id") == "filter"
    d.switch_to.active_element.send_keys("PHOTO_01")
    want = sorted(Path(p).name for p in df["path"] if "photo_01" in p.lower())
    wait(d, lambda d: sorted(names()) == want)
    assert len(want) == 10 and d.find_element(By.ID, "pager").get_attribute("hidden") is not None
    d.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(d, lambda d: len(names()) == 25)

    d.find_element(By.ID, "below-only").click()
    below = int((df["score"] < float(d.find_element(By.ID, "thr-num").get_attribute("value"))).sum())
    assert 0 < below <= 25 and len(names()) == below and \
        len(d.find_elements(By.CSS_SELECTOR, "#grid .card.below")) == below
    d.find_element(By.ID, "below-only").click()

    links = d.find_elements(By.CSS_SELECTOR, "#grid a.thumb")
    links[0].send_keys(Keys.ARROW_RIGHT)  # arrow keys move between the cards of the grid
    assert js(d, "return document.activeElement === document.querySelectorAll('#grid a.thumb')[1]")
    cols = js(d, "return getComputedStyle(document.getElementById('grid')).gridTemplateColumns.split(' ').length")
    d.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert js(d, "return document.activeElement === document.querySelectorAll('#grid a.thumb')[arguments[0]]", 1 + cols)
    assert d.switch_to.active_element.get_attribute("href").startswith("file:///")

    # dragging on the histogram: to its left end nothing is below the threshold, to its right end all are
    from selenium.webdriver.common.action_chains import ActionChains

    hist = d.find_element(By.ID, "hist")
    half = hist.size["width"] // 2 - 2
    js(d, "arguments[0].scrollIntoView({block: 'center'})", hist)
    ActionChains(d).move_to_element_with_offset(hist, 0, 0).click_and_hold().move_by_offset(-half, 0).perform()
    assert d.find_element(By.ID, "thr-count").get_attribute("data-count") == "0"
    ActionChains(d).move_by_offset(2 * half, 0).release().perform()
    assert d.find_element(By.ID, "thr-count").get_attribute("data-count") == str(N)
    assert len(d.find_elements(By.CSS_SELECTOR, "#grid .card.below")) == 25
    assert browser.console_errors() == []


def test_moved_photos_and_deleted_thumbnails_never_break_the_page(browser, sixty, tmp_path):
    from selenium.webdriver.common.by import By

    root, df = sixty
    table = df.copy()
    table.loc[0, "path"] = str(root / "photos" / "since_deleted.jpg")
    table.to_csv(tmp_path / "s.csv", index=False)
    out = tmp_path / "g.html"
    s = build_gallery(tmp_path / "s.csv", out, mode="folder", workers=2, progress=False)
    assert s["no_thumbnail"] == 1
    second = sorted(thumbs_dir(out).iterdir())[0]
    second.unlink()  # a thumbnail lost after the page was made
    d = browser.driver
    browser.open(out)
    assert len(d.find_elements(By.CSS_SELECTOR, "#grid .card")) == N
    load_every_thumbnail(d)
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid .ph")) >= 2)
    first = d.find_element(By.CSS_SELECTOR, "#grid .card .ph")
    assert "no such file" in first.text and "since_deleted.jpg" in first.get_attribute("aria-label")
    assert d.find_element(By.CSS_SELECTOR, "#grid .card .size").text.endswith("· file missing")
    assert len(d.find_elements(By.CSS_SELECTOR, "#grid .ph")) == 2, "the moved photo and the lost thumbnail"
    widths = js(d, "return [...document.querySelectorAll('#grid img')].map(i => i.naturalWidth)")
    assert len(widths) == N - 2 and all(w > 0 for w in widths), "the rest of the page is whole"
    assert browser.console_errors(ignore=(FILE_NOT_FOUND,)) == []

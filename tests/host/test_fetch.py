"""firmware/fetch.py: pinned sources are checked, and a bad one stops the build with a message
that names the package, the expected hash and what to do. (The real fetch runs in every build.)"""
import hashlib
import importlib.util
import re
import subprocess

import pytest

from harness import ROOT


@pytest.fixture
def fetch(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("fetch", ROOT / "firmware" / "fetch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "CACHE", tmp_path / "cache")
    return module


def mbedtls(fetch):
    return next(s for s in fetch.read_lock() if s["name"] == "mbedtls")


def test_the_lock_pins_every_source_with_a_sha256_or_a_commit(fetch):
    sources = {s["name"]: s for s in fetch.read_lock()}
    assert set(sources) == set(fetch.PLACE)
    for s in sources.values():
        if s["in_debian"]:
            assert len(s["sha256"]) == 64 and int(s["sha256"], 16) >= 0
        else:
            # Only on the git route: a full commit hash, which no one can move (a tag can be).
            assert s["sha256"] == s["orig"] == "-" and re.fullmatch(r"[0-9a-f]{40}", s["tag"]), s["name"]


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_the_git_route_checks_out_the_pinned_commit_without_submodules(fetch, tmp_path):
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git("init", "-q", cwd=upstream)
    (upstream / "driver.h").write_text("pinned\n")
    git("add", ".", cwd=upstream)
    git("commit", "-qm", "pinned", cwd=upstream)
    pinned = subprocess.run(["git", "rev-parse", "HEAD"], cwd=upstream, capture_output=True, text=True).stdout.strip()
    (upstream / "driver.h").write_text("later\n")
    git("commit", "-qam", "later", cwd=upstream)
    # Servers such as GitHub give out any commit by its hash; a local repository must be told to.
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=upstream)
    dest = tmp_path / "tree" / "lib" / "driver"
    dest.mkdir(parents=True)
    (dest / "stale.c").write_text("from an earlier layout")
    fetch.fetch_git(dict(url="file://%s" % upstream, tag=pinned), dest)
    assert (dest / "driver.h").read_text() == "pinned\n" and not (dest / "stale.c").exists()


def test_a_binary_package_gives_only_the_sources_it_installs(fetch, tmp_path):
    package = tmp_path / "pkg"
    (package / "DEBIAN").mkdir(parents=True)
    (package / "DEBIAN" / "control").write_text(
        "Package: tinyusb-source\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n")
    (package / "usr" / "src" / "tinyusb" / "src").mkdir(parents=True)
    (package / "usr" / "src" / "tinyusb" / "src" / "tusb.h").write_text("tusb\n")
    (package / "usr" / "share" / "doc").mkdir(parents=True)
    (package / "usr" / "share" / "doc" / "copyright").write_text("c\n")
    deb = tmp_path / "tinyusb-source_1_all.deb"
    subprocess.run(["dpkg-deb", "-b", str(package), str(deb)], check=True, capture_output=True)
    dest = tmp_path / "lib" / "tinyusb"
    fetch.extract_debian(deb, "tinyusb-source", dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["src", "src/tusb.h"]


def test_a_tarball_that_does_not_match_its_pin_stops_the_build(fetch):
    source = mbedtls(fetch)
    fetch.CACHE.mkdir()
    (fetch.CACHE / source["orig"]).write_bytes(b"not the pinned mbedtls")
    with pytest.raises(fetch.FetchError) as error:
        fetch.fetch_debian(source)
    message = str(error.value)
    assert "mbedtls" in message and source["sha256"] in message and "firmware/sources.lock" in message
    assert "run make again to re-fetch" in message
    # The bad download is set aside, never used, and never taken for the cached one.
    assert not (fetch.CACHE / source["orig"]).exists()
    assert (fetch.CACHE / (source["orig"] + ".bad")).exists()


def test_a_cached_tarball_that_matches_is_used_without_downloading(fetch, monkeypatch):
    fetch.CACHE.mkdir()
    tarball = fetch.CACHE / "pinned.orig.tar.xz"
    tarball.write_bytes(b"the pinned bytes")
    source = dict(mbedtls(fetch), orig=tarball.name, sha256=hashlib.sha256(b"the pinned bytes").hexdigest())
    monkeypatch.setattr(fetch, "run", lambda *a, **k: pytest.fail("downloaded although cached"))
    assert fetch.fetch_debian(source) == tarball


def test_without_apt_it_says_to_use_the_git_route(fetch, monkeypatch):
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)
    with pytest.raises(fetch.FetchError, match="make SOURCES=git"):
        fetch.fetch_debian(mbedtls(fetch))


def test_an_unknown_route_is_refused(tmp_path):
    out = subprocess.run(["python3", str(ROOT / "firmware" / "fetch.py")], env={"SOURCES": "svn", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    assert out.returncode == 1 and "SOURCES must be 'debian' or 'git'" in out.stderr

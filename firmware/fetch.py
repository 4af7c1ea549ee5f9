#!/usr/bin/env python3
"""Fetch the pinned firmware sources into build/src, checked and patched.

Default route (SOURCES=debian): Debian packages from the trixie suite, fetched with apt through
the machine's own configured mirror, using a private apt configuration under build/apt (nothing
under /etc/apt is touched). Each file (a source package's orig tarball, or a binary package that
ships sources, such as tinyusb-source) is checked against firmware/sources.lock. Sources Debian
does not have (marked "-" in the lock) are left out: the boards that need them cannot be built.

Other route (SOURCES=git): every source from its upstream git tag or commit named in the lock,
for machines with internet and without apt.

The tree is laid out as MicroPython expects its submodules (lib/mbedtls, lib/pico-sdk, ...);
host tools (picotool) go beside it. A stamp records what the tree was made from; when nothing
changed, this script does nothing at all.
"""
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "firmware" / "sources.lock"
PATCHES = ROOT / "firmware" / "patches"
BUILD = ROOT / "build"
SRC = BUILD / "src"
CACHE = SRC / "cache"
TREE = SRC / "micropython"
STAMP = TREE / ".netsec-sources"
APT = BUILD / "apt"
SUITE = "trixie"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Where each source goes under build/src: libraries at MicroPython's submodule paths, the host
# tool beside the tree. A binary package's sources are taken from the folder it installs them in.
PLACE = {
    "micropython": "micropython",
    "mbedtls": "micropython/lib/mbedtls",
    "lwip": "micropython/lib/lwip",
    "pico-sdk": "micropython/lib/pico-sdk",
    "tinyusb-source": "micropython/lib/tinyusb",
    "cyw43-driver": "micropython/lib/cyw43-driver",
    "stm32lib": "micropython/lib/stm32lib",
    "picotool": "picotool",
}
DEB_FOLDER = {"tinyusb-source": "usr/src/tinyusb/"}


class FetchError(Exception):
    pass


def read_lock():
    sources = []
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, version, orig, sha256, url, tag = line.split()
        sources.append(dict(name=name, version=version, orig=orig, sha256=sha256, url=url, tag=tag,
                            in_debian=version != "-"))
    return sources


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mirror_uri():
    """The Debian archive URI this machine's apt already uses (never written into the project)."""
    candidates = []
    apt_dir = Path("/etc/apt")
    for path in sorted(apt_dir.glob("sources.list.d/*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (l.partition(":") for l in stanza.splitlines() if l and l[0] not in "# \t")
            )
            suites = fields.get("suites", "").split()
            if "deb" in fields.get("types", "") and suites and not any("security" in s for s in suites):
                if "debian-archive-keyring" in fields.get("signed-by", "") or "debian" in fields.get("uris", ""):
                    candidates += fields.get("uris", "").split()
    one_line = apt_dir / "sources.list"
    if one_line.exists():
        for line in one_line.read_text().splitlines():
            m = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
            if m and "security" not in m.group(2) and "debian" in m.group(1):
                candidates.append(m.group(1))
    if not candidates:
        raise FetchError(
            "no Debian archive found in /etc/apt/sources.list{,.d}; configure apt for a Debian "
            "mirror, or fetch from upstream git with: make SOURCES=git"
        )
    return candidates[0]


def apt_env():
    """A private apt configuration under build/apt with trixie from the machine's mirror: deb-src
    for source packages, deb for the binary packages that ship sources (tinyusb-source)."""
    etc = APT / "etc"
    for d in (etc / "sources.list.d", etc / "preferences.d", etc / "apt.conf.d",
              APT / "state" / "lists" / "partial", APT / "cache" / "archives" / "partial"):
        d.mkdir(parents=True, exist_ok=True)
    sources = "".join("%s [signed-by=%s] %s %s main\n" % (kind, KEYRING, mirror_uri(), SUITE)
                      for kind in ("deb-src", "deb"))
    conf = "".join(
        'Dir::%s "%s";\n' % kv
        for kv in (
            ("Etc", etc),
            ("Etc::sourcelist", etc / "sources.list"),
            ("Etc::sourceparts", etc / "sources.list.d"),
            ("Etc::preferencesparts", etc / "preferences.d"),
            ("Etc::parts", etc / "apt.conf.d"),
            ("State", APT / "state"),
            ("Cache", APT / "cache"),
        )
    )
    conf += 'APT::Sandbox::User "root";\n'
    changed = not (etc / "sources.list").exists() or (etc / "sources.list").read_text() != sources
    (etc / "sources.list").write_text(sources)
    (etc / "apt.conf").write_text(conf)
    env = dict(os.environ, APT_CONFIG=str(etc / "apt.conf"))
    if changed or not any((APT / "state" / "lists").glob("*Sources*")):
        run(["apt-get", "-q", "update"], env=env)
    return env


def run(cmd, **kw):
    print("+", " ".join(map(str, cmd)), flush=True)
    result = subprocess.run(cmd, **kw)
    if result.returncode:
        raise FetchError("%s failed with exit status %d" % (cmd[0], result.returncode))


def fetch_debian(source):
    """Return the path of the checked file (orig tarball or .deb), downloading it with apt if not
    cached."""
    tarball = CACHE / source["orig"]
    if not tarball.exists():
        if not shutil.which("apt-get"):
            raise FetchError("apt-get is not available; on this machine use: make SOURCES=git")
        CACHE.mkdir(parents=True, exist_ok=True)
        env = apt_env()
        how = ["download"] if tarball.suffix == ".deb" else ["source", "--download-only", "--tar-only"]
        try:
            run(["apt-get", "-q"] + how + ["%s=%s" % (source["name"], source["version"])], cwd=CACHE, env=env)
        except FetchError:
            raise FetchError(
                "could not fetch Debian source package %s=%s (suite %s). Check that apt reaches "
                "the machine's mirror; if the version was superseded, update firmware/sources.lock "
                "to the new version and its sha256 after reviewing it." % (source["name"], source["version"], SUITE)
            )
    actual = sha256_of(tarball)
    if actual != source["sha256"]:
        bad = tarball.with_suffix(tarball.suffix + ".bad")
        tarball.rename(bad)
        raise FetchError(
            "%s: %s has sha256 %s but firmware/sources.lock pins %s. The download was moved to %s; "
            "run make again to re-fetch, and if it still differs, do not build: find out why the "
            "archive changed before updating the pin." % (source["name"], source["orig"], actual, source["sha256"], bad)
        )
    return tarball


def extract(tarball, dest, folder=None):
    """Unpack a tarball into dest, dropping its single top-level directory; or, with folder,
    only what is under that folder (a binary package's data, from dpkg-deb --fsys-tarfile)."""
    dest.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with tarfile.open(fileobj=tarball) if folder else tarfile.open(tarball) as tar:
        members = []
        for m in tar.getmembers():
            if folder:
                name = m.name[2:] if m.name.startswith("./") else m.name
                parts = ["", name[len(folder):]] if name.startswith(folder) else []
            else:
                parts = m.name.split("/", 1)
            if len(parts) < 2 or not parts[1]:
                continue
            m.name = parts[1]
            # Unpacked files are new to make: whatever was built from an older tree is rebuilt.
            m.mtime = now
            members.append(m)
        tar.extractall(dest, members=members, filter="tar")


def extract_debian(path, name, dest):
    if path.suffix != ".deb":
        return extract(path, dest)
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], check=True, capture_output=True).stdout
    extract(io.BytesIO(data), dest, folder=DEB_FOLDER[name])


def fetch_git(source, dest):
    """Check out one tag or commit (the lock's pin) with no history and no submodules: every
    library a build needs has its own line in the lock."""
    if dest.exists() and any(dest.iterdir()):
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q", str(dest)])
    run(["git", "-C", str(dest), "fetch", "-q", "--depth", "1", source["url"], source["tag"]])
    run(["git", "-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD"])


def patches():
    return sorted(PATCHES.glob("*.patch")) if PATCHES.is_dir() else []


def wanted_stamp(sources, route):
    h = hashlib.sha256(route.encode())
    for s in sources:
        h.update(("%s %s %s %s\n" % (s["name"], s["sha256"], s["url"], s["tag"])).encode())
    for p in patches():
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def main():
    route = os.environ.get("SOURCES", "debian")
    if route not in ("debian", "git"):
        raise FetchError("SOURCES must be 'debian' or 'git', not %r" % route)
    sources = read_lock()
    stamp = wanted_stamp(sources, route)
    if STAMP.exists() and STAMP.read_text().strip() == stamp:
        return
    if route == "debian":
        sources = [s for s in sources if s["in_debian"]]
        tarballs = {s["name"]: fetch_debian(s) for s in sources}
    for place in set(PLACE.values()):
        if (SRC / place).exists() and not (SRC / place).is_relative_to(TREE):
            shutil.rmtree(SRC / place)
    if TREE.exists():
        shutil.rmtree(TREE)
    # MicroPython first: the libraries go inside its tree.
    for s in sorted(sources, key=lambda s: s["name"] != "micropython"):
        dest = SRC / PLACE[s["name"]]
        if route == "debian":
            print("unpacking %s" % tarballs[s["name"]].name, flush=True)
            extract_debian(tarballs[s["name"]], s["name"], dest)
        else:
            fetch_git(s, dest)
    # Our manifests use no micropython-lib package, but MicroPython's build checks it is present.
    lib = TREE / "lib" / "micropython-lib"
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "README.md").write_text("Not used by netsec: its manifests require no micropython-lib package.\n")
    for p in patches():
        print("applying %s" % p.name, flush=True)
        run(["patch", "-s", "-p1", "-i", str(p)], cwd=TREE)
    STAMP.write_text(stamp + "\n")


if __name__ == "__main__":
    try:
        main()
    except FetchError as e:
        sys.exit("firmware/fetch.py: error: %s" % e)

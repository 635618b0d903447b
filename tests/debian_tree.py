"""A Debian 12 tree for converging the Ansible playbook over the `community.general.chroot`
connection (no Docker engine on these machines; systemd does not run inside a chroot).

    base = cached_tree()            # debootstrap once, reused by later local runs
    with prepared_copy(base, tmp_path / "tree") as tree:
        ... ansible-playbook -c community.general.chroot against `tree` ...
        run_in(tree, ["nginx", "-t"])

The cache lives under $TELECONSULT_TEST_CACHE (default ~/.cache/teleconsult-tests), keyed by the
package list, so a change of the list makes a new tree. CI starts from an empty cache: one
debootstrap per run (about 90 s).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What a fresh Debian 12 server has (systemd, so that systemd-analyze runs in the tree), plus
# python3-apt for Ansible's apt module. Everything else is installed by the playbook itself.
PACKAGES = ("python3", "python3-venv", "python3-apt", "ca-certificates", "systemd")


def cache_dir() -> Path:
    return Path(os.environ.get("TELECONSULT_TEST_CACHE") or Path.home() / ".cache" / "teleconsult-tests")


def cached_tree() -> Path:
    """A pristine tree made by debootstrap; made once per package list, then reused read-only."""
    key = hashlib.sha256(f"{SUITE}|minbase|{','.join(PACKAGES)}".encode()).hexdigest()[:12]
    tree = cache_dir() / f"{SUITE}-{key}"
    if (tree / "etc" / "debian_version").exists():
        return tree
    partial = tree.with_name(tree.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, str(partial),
                    MIRROR], check=True, capture_output=True, timeout=900)
    partial.rename(tree)
    return tree


@contextlib.contextmanager
def prepared_copy(base: Path, tree: Path) -> Iterator[Path]:
    """Copy `base` to `tree`, make it usable as a chroot for the test, mount /proc; unmount after."""
    subprocess.run(["cp", "-a", str(base), str(tree)], check=True, timeout=300)
    # The test machine's network intercepts TLS with its own certificate authority: pip in the
    # tree must trust it. A real server needs neither this file nor the pip.conf below, so the
    # test does it here, never the role.
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", tree / "etc/ssl/certs/ca-certificates.crt")
    (tree / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    shutil.copyfile("/etc/resolv.conf", tree / "etc/resolv.conf")
    # Packages must not start their daemons in the tree: they would bind ports of the test machine
    # (nginx: 80) and outlive the test. Debian's standard switch for chroots.
    policy = tree / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    proc = tree / "proc"
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        yield tree
    finally:
        subprocess.run(["umount", "-l", str(proc)], check=False)


def run_in(tree: Path, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command inside the tree (chroot), capture its output as text."""
    return subprocess.run(["chroot", str(tree), *args], capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", 120), **kwargs)

"""A display with OpenGL for the napari tests: Qt's offscreen platform draws napari's canvas through GLX,
so it needs an X server; an invisible one (Xvfb) is started for these tests when none is set."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def gl_display():
    """``DISPLAY`` of a running X server (Xvfb started here, stopped at the end); fails on CI without one."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        message = "napari's canvas needs OpenGL through an X server: apt-get install xvfb"
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)  # CI: fail
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1200x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    os.environ["DISPLAY"] = f":{number}"
    yield os.environ["DISPLAY"]
    del os.environ["DISPLAY"]
    server.terminate()
    server.wait(timeout=30)

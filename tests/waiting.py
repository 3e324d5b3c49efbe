"""Waiting on a condition with a deadline: the one way tests wait (never a fixed sleep, never a timing assert)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_S = 0.05


def wait_for(condition: Callable[[], T], timeout: float, message: str) -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail naming ``message`` at the deadline.

    The deadline only bounds a broken run: a passing test returns as soon as the condition holds, so the
    figure says nothing about speed and is generous on a loaded machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message} (last value {value!r})")
        time.sleep(POLL_S)


async def wait_for_async(condition: Callable[[], T], timeout: float, message: str) -> T:
    """``wait_for`` on a running event loop: polls without blocking the loop's other tasks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message} (last value {value!r})")
        await asyncio.sleep(POLL_S)

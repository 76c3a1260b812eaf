"""The monitor's allocator tuning: what it sets, what it leaves to the environment."""

from __future__ import annotations

import platform

import pytest

from driftward_serving.monitor.allocator import (
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    apply_allocator_tuning,
    find_mallopt,
)


class RecordingMallopt:
    def __init__(self, answer: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def __call__(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return self.answer


def test_both_thresholds_are_raised_when_the_environment_sets_neither() -> None:
    mallopt = RecordingMallopt()
    lines = apply_allocator_tuning({}, mallopt)
    assert sorted(mallopt.calls) == [(M_MMAP_THRESHOLD, 4_194_304), (M_TRIM_THRESHOLD, 33_554_432)]
    assert lines == [
        "allocator: MALLOC_MMAP_THRESHOLD_=4194304 set",
        "allocator: MALLOC_TRIM_THRESHOLD_=33554432 set",
    ]


def test_a_threshold_from_the_environment_is_kept() -> None:
    mallopt = RecordingMallopt()
    lines = apply_allocator_tuning({"MALLOC_TRIM_THRESHOLD_": "131072"}, mallopt)
    assert mallopt.calls == [(M_MMAP_THRESHOLD, 4_194_304)]
    assert "allocator: MALLOC_TRIM_THRESHOLD_ from the environment (131072) is kept" in lines


def test_a_refusal_or_another_c_library_is_reported_not_raised() -> None:
    refused = apply_allocator_tuning({}, RecordingMallopt(answer=0))
    assert all("refused by mallopt; glibc's default stays" in line for line in refused)
    assert apply_allocator_tuning({}, None) == [
        "allocator tuning skipped: this C library has no mallopt (not glibc)"
    ]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_settings() -> None:
    lines = apply_allocator_tuning({}, find_mallopt())
    assert len(lines) == 2
    assert all(line.endswith(" set") for line in lines)

"""The device fingerprint: its JSON round trip, documents older than some of its fields, how two
differ, and keys that stay what they were (the measurement cache and device-profile file names)."""

from __future__ import annotations

import json

import pytest

from e2gcsearch import ArchConfig
from e2gcsearch.energy import create_meter
from e2gcsearch.energy_model import DeviceProfile, default_profile_path, fingerprint_warning
from e2gcsearch.profiling import DeviceFingerprint, ProfileCache, device_fingerprint
from e2gcsearch.profiling.cache import cache_key, choice_key

# A fingerprint as the profiler stored it for an nchw measurement (no ``implementation`` key).
STORED = {
    "device": "cpu",
    "device_model": "Test CPU 9000",
    "driver": "Linux 6.1.0",
    "torch": "2.3.1",
    "dtype": "float32",
    "threads": 4,
    "meter": "estimate (time x 7.5 W)",
    "memory_format": "contiguous",
}
TINY = ArchConfig("mobilenet_v1", group_size=4, width=0.25, num_classes=10)


def test_round_trip_through_json_keeps_every_recorded_field():
    fingerprint = DeviceFingerprint.from_dict(STORED)
    assert fingerprint.threads == 4 and fingerprint.implementation is None
    assert fingerprint.to_dict() == STORED
    assert DeviceFingerprint.from_dict(json.loads(json.dumps(fingerprint.to_dict()))) == fingerprint
    compiled = fingerprint.with_implementation("compile")
    assert DeviceFingerprint.from_dict(json.loads(json.dumps(compiled.to_dict()))) == compiled


def test_an_older_document_without_implementation_keys_loads_as_it_was():
    old = {key: value for key, value in STORED.items() if key != "memory_format"}
    fingerprint = DeviceFingerprint.from_dict(old)
    assert fingerprint.memory_format is None and fingerprint.implementation is None
    assert fingerprint.implementation_name == "nchw"
    assert fingerprint.to_dict() == old  # nothing invented: a stored study compares equal
    assert DeviceFingerprint.from_dict(dict(old, memory_format="channels_last")).implementation_name == "channels_last"
    assert DeviceFingerprint.from_dict(None) == DeviceFingerprint() == DeviceFingerprint.from_dict({})
    assert DeviceFingerprint.from_dict(dict(STORED, added_later="x")).to_dict() == STORED
    with pytest.raises(TypeError, match="JSON object"):
        DeviceFingerprint.from_dict(["cpu"])  # type: ignore[arg-type]


def test_with_implementation_names_only_what_the_layout_does_not():
    fingerprint = DeviceFingerprint.from_dict(STORED)
    assert fingerprint.with_implementation("nchw") == fingerprint
    last = fingerprint.with_implementation("channels_last")
    assert (last.memory_format, last.implementation, last.implementation_name) == (
        "channels_last",
        None,
        "channels_last",
    )
    assert last.with_implementation("nchw") == fingerprint
    compiled = fingerprint.with_implementation("compile")
    assert (compiled.memory_format, compiled.implementation) == ("contiguous", "compile")
    auto = fingerprint.with_implementation("auto")
    assert (auto.memory_format, auto.implementation) == ("chosen per batch size", "auto")
    assert auto.with_implementation("nchw") == fingerprint


def test_differences_name_each_identity_field_in_a_line():
    stored = DeviceFingerprint.from_dict(STORED)
    here = DeviceFingerprint.from_dict(dict(STORED, device_model="Other CPU 1", torch="2.4.0", threads=8))
    assert stored.differences(here, mine="in the profile") == [
        "device_model: 'Other CPU 1' here, 'Test CPU 9000' in the profile",
        "torch: '2.4.0' here, '2.3.1' in the profile",
    ]  # threads alone do not make another device
    assert stored.differences(stored.with_implementation("compile")) == []  # not recorded: not compared
    assert stored.with_implementation("compile").differences(stored) == ["implementation: None here, 'compile' stored"]
    older = DeviceFingerprint.from_dict({key: value for key, value in STORED.items() if key != "memory_format"})
    assert older.differences(stored.with_implementation("channels_last")) == []
    assert stored.differences(stored.with_implementation("channels_last")) == [
        "memory_format: 'channels_last' here, 'contiguous' stored"
    ]


def test_keys_are_the_ones_existing_caches_and_profiles_were_written_under(tmp_path):
    # Hard-coded file names computed before the fingerprint had a type: they keep the measurement
    # caches, auto choices and device-profile calibrations already on disk valid. Never update them
    # to make this test pass - a changed value means every stored measurement is measured again.
    fingerprint = DeviceFingerprint.from_dict(STORED)
    cache = ProfileCache(tmp_path)
    assert fingerprint.key() == STORED
    assert cache.path(cache_key(TINY, 4, 64, fingerprint)).name == (
        "89fa610f6f3246b435c5d9d81689b5945b42eae1b9d556baf78c7d9a05241c3b.json"
    )
    assert cache.path(cache_key(TINY, 4, 64, fingerprint.with_implementation("compile"), "infer")).name == (
        "730037ee50a3d8d29b850735f3462ce5303b41b23dadefb897149b2292010c85.json"
    )
    assert cache.path(choice_key(cache_key(TINY, 4, 64, fingerprint.with_implementation("auto")))).name == (
        "97681fef8995b0effd440cf90107a05f46df4102ed5b83d294fda01fa119153b.json"
    )
    assert default_profile_path(fingerprint, tmp_path).name == "99c229a61f0e.json"
    assert default_profile_path(fingerprint, tmp_path, 64).name == "68b9d192ceae.json"
    assert fingerprint.identity_digest(64) == "68b9d192ceae"
    older = DeviceFingerprint.from_dict({key: value for key, value in STORED.items() if key != "memory_format"})
    assert default_profile_path(older, tmp_path).name == "d88e1708b8cb.json"
    assert cache.path(cache_key(TINY, 4, 64, older)).name == (
        "13063f1d4c7c7b3b85d8e27e780c88643b090968cd74e5985e0b7393e946761a.json"
    )


def test_this_machine_gets_a_complete_fingerprint():
    with create_meter("estimate", device="cpu") as meter:
        fingerprint = device_fingerprint("cpu", "float32", "channels_last", meter)
    assert None not in (
        fingerprint.device_model,
        fingerprint.driver,
        fingerprint.torch,
        fingerprint.threads,
        fingerprint.meter,
    )
    assert fingerprint.memory_format == "channels_last" and fingerprint.implementation is None


def test_a_stored_profile_reads_back_a_typed_fingerprint(tmp_path):
    data = {
        "kind": "e2gcsearch.device-profile",
        "version": 1,
        "backend": "estimate",
        "is_estimate": True,
        "resolution": 64,
        "fits": {},
        "fingerprint": {"device": "cpu", "device_model": "Test CPU 9000"},
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(data))
    profile = DeviceProfile.load(path)
    assert profile.fingerprint == DeviceFingerprint(device="cpu", device_model="Test CPU 9000")
    assert "device_model: " in fingerprint_warning(profile)  # this machine is not 'Test CPU 9000'
    assert profile.to_dict()["fingerprint"] == data["fingerprint"]

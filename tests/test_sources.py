import json

import pytest

from conftest import TINY
from denoise.errors import DataError
from denoise.mixing import MixOptions, create_dataset
from denoise.sources import find_esc50_metadata, find_sources, parse_classes, read_esc50_classes

CLOCK_AND_STEPS = ("clock_tick", "footsteps")
EXPECTED = ["1-57316-A-38.wav", "2-109505-A-25.wav", "5-200334-A-38.wav"]


def test_parse_classes():
    assert parse_classes(" clock_tick,footsteps ,, dog") == ("clock_tick", "footsteps", "dog")
    assert parse_classes("") == ()


@pytest.mark.parametrize("where", ["root", "audio", "unpacked into"])
def test_esc50_classes_from_the_metadata_wherever_the_folder_points(esc50, where):
    folder = {"root": esc50, "audio": esc50 / "audio", "unpacked into": esc50.parent}[where]
    assert find_esc50_metadata(folder) == esc50 / "meta" / "esc50.csv"
    assert [p.name for p in find_sources(folder, CLOCK_AND_STEPS)] == EXPECTED
    assert len(find_sources(folder)) == 5  # no classes: every audio file, nothing else


def test_esc50_files_missing_from_disk_or_metadata_are_left_out(esc50):
    (esc50 / "audio" / "5-200334-A-38.wav").unlink()  # e.g. fold 5 moved to the test folder
    (esc50 / "audio" / "9-1-A-38.wav").write_bytes((esc50 / "audio" / "5-9032-A-0.wav").read_bytes())
    assert [p.name for p in find_sources(esc50, CLOCK_AND_STEPS)] == EXPECTED[:2]


def test_unknown_class_lists_the_valid_ones(esc50):
    with pytest.raises(DataError, match=r"esc50.csv: unknown class\(es\) clocktick; valid: clock_tick, dog, footsteps$"):
        find_sources(esc50, ("clocktick", "dog"))


def test_classes_without_metadata_fail_clearly(esc50, librispeech):
    (esc50 / "meta" / "esc50.csv").unlink()
    with pytest.raises(DataError, match=r"ESC-50-master: choosing noise classes needs ESC-50 metadata"):
        find_sources(esc50, ("dog",))
    with pytest.raises(DataError, match=r"train-clean-100: choosing noise classes needs ESC-50 metadata"):
        find_sources(librispeech, ("dog",))


def test_bad_metadata_is_named(tmp_path):
    meta = tmp_path / "esc50.csv"
    meta.write_text("name,class\na.wav,dog\n")
    with pytest.raises(DataError, match=r"esc50.csv: not ESC-50 metadata \(no category, filename column\)"):
        read_esc50_classes(meta)
    meta.write_text("filename,fold,target,category,esc10,src_file,take\n")
    with pytest.raises(DataError, match="esc50.csv: ESC-50 metadata lists no files"):
        read_esc50_classes(meta)


def test_classes_with_no_file_on_disk_fail_clearly(esc50):
    for name in EXPECTED:
        (esc50 / "audio" / name).unlink()
    with pytest.raises(DataError, match="no audio file of class"):
        find_sources(esc50, CLOCK_AND_STEPS)


def test_data_creation_on_librispeech_and_esc50_as_they_unpack(tmp_path, librispeech, esc50):
    out = tmp_path / "data"
    options = MixOptions(nb_samples=6, shard_size=6, noise_classes=CLOCK_AND_STEPS)
    report = create_dataset(librispeech.parent, esc50, out, TINY, options)  # the LibriSpeech root
    assert report.pairs == 6
    assert report.found == {"voice": 4, "noise": 3}
    assert report.skipped == {}  # transcripts, README.TXT, esc50.gif... are not audio: not even skipped
    assert {p.rsplit("/", 1)[-1] for p in report.used["noise"]} <= set(EXPECTED)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files_found"] == {"voice": 4, "noise": 3}
    assert manifest["files_skipped"] == {}
    assert manifest["options"]["noise_classes"] == list(CLOCK_AND_STEPS)

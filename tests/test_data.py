"""Datasets, subsets, the decoded-tensor cache and batch augmentation (e2gcsearch.data)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from e2gcsearch.cli import main
from e2gcsearch.data import DataConfig, augment_batch, channel_stats, load_data, normalize_batch, resolve_dataset
from e2gcsearch.data.cache import SkippedImageWarning
from e2gcsearch.errors import DataError

Image = pytest.importorskip("PIL.Image")

SHARED_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "food101-mini"
CLASSES = ("apple_pie", "baklava", "churros")


def write_jpeg(path: Path, seed: int, size: tuple[int, int] = (48, 36)) -> None:
    """A real JPEG whose content depends on ``seed`` (so every file decodes to different pixels)."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)


def make_food101(root: Path, train: int = 6, test: int = 3) -> Path:
    """A miniature Food-101 tree (torchvision layout) with real JPEGs and meta JSON files."""
    base = root / "food-101"
    lists: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for c, name in enumerate(CLASSES):
        for split, count, offset in (("train", train, 0), ("test", test, 1000)):
            ids = [f"{name}/{offset + 10 * c + i}" for i in range(count)]
            lists[split][name] = ids
            for entry in ids:
                write_jpeg(base / "images" / f"{entry}.jpg", seed=zlib.crc32(entry.encode()))
    (base / "meta").mkdir(parents=True, exist_ok=True)
    for split, content in lists.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(content))
    (base / "meta" / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


@pytest.fixture
def food_root(tmp_path: Path) -> Path:
    return make_food101(tmp_path / "data")


def config(root: Path, cache: Path, **changes) -> DataConfig:
    settings = dict(name="food101", root=str(root), resolution=32, cache_dir=str(cache))
    settings.update(changes)
    return DataConfig(**settings)


def test_food101_layout_official_split(food_root: Path, tmp_path: Path) -> None:
    data = load_data(config(food_root, tmp_path / "cache"), progress=False)
    assert data.class_names == list(CLASSES)
    assert tuple(data.train_images.shape) == (18, 3, 32, 32) and data.train_images.dtype == torch.uint8
    assert tuple(data.val_images.shape) == (9, 3, 32, 32)
    assert data.per_class_counts("train") == {name: 6 for name in CLASSES}
    assert data.per_class_counts("val") == {name: 3 for name in CLASSES}
    description = data.description()
    assert (description["train_size"], description["val_size"], description["skipped"]) == (18, 9, 0)
    assert description["dataset"] == "food101" and description["resolution"] == 32


@pytest.mark.skipif(not SHARED_MINI.is_dir(), reason=f"shared test data not present at {SHARED_MINI}")
def test_food101_mini_matches_torchvision(tmp_path: Path) -> None:
    from torchvision.datasets import Food101

    data = load_data(config(SHARED_MINI, tmp_path / "cache", classes=3), progress=False)
    reference = Food101(str(SHARED_MINI), split="test")
    assert data.class_names == reference.classes[:3]
    assert (data.train_labels.numel(), data.val_labels.numel(), data.skipped) == (144, 48, [])
    # the official test split, in torchvision's order and labelling
    assert data.val_labels.tolist() == [label for label in reference._labels if label < 3]
    first = reference._image_files[0]
    from e2gcsearch.data.cache import decode_image

    assert torch.equal(data.val_images[0], torch.from_numpy(decode_image(first, 32)).permute(2, 0, 1))


def test_subset_is_stratified_and_reproducible(food_root: Path, tmp_path: Path) -> None:
    subset = dict(classes=2, train_per_class=4, val_per_class=2)
    first = load_data(config(food_root, tmp_path / "a", **subset), progress=False)
    again = load_data(config(food_root, tmp_path / "b", **subset), progress=False)  # fresh cache, same seed
    other = load_data(config(food_root, tmp_path / "c", seed=1, **subset), progress=False)
    assert first.class_names == ["apple_pie", "baklava"]
    assert first.per_class_counts("train") == {"apple_pie": 4, "baklava": 4}
    assert first.per_class_counts("val") == {"apple_pie": 2, "baklava": 2}
    assert torch.equal(first.train_images, again.train_images) and torch.equal(first.val_images, again.val_images)
    assert not torch.equal(first.train_images, other.train_images)


def test_cache_hit_returns_identical_tensors(food_root: Path, tmp_path: Path) -> None:
    built = load_data(config(food_root, tmp_path / "cache"), progress=False)
    hit = load_data(config(food_root, tmp_path / "cache"), progress=False)
    assert not built.cache_hit and hit.cache_hit
    assert Path(hit.cache_path).is_file() and Path(hit.cache_path).parent == tmp_path / "cache"
    for name in ("train_images", "train_labels", "val_images", "val_labels"):
        assert torch.equal(getattr(built, name), getattr(hit, name)), name
    # another resolution is another cache entry
    assert not load_data(config(food_root, tmp_path / "cache", resolution=16), progress=False).cache_hit


def test_corrupt_images_are_skipped_and_reported(food_root: Path, tmp_path: Path) -> None:
    broken = food_root / "food-101" / "images" / "baklava" / "12.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    truncated = food_root / "food-101" / "images" / "churros" / "1021.jpg"
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.warns(SkippedImageWarning) as caught:
        data = load_data(config(food_root, tmp_path / "cache"), progress=False)
    messages = " ".join(str(w.message) for w in caught)
    assert str(broken) in messages and str(truncated) in messages
    assert sorted(path for path, _ in data.skipped) == sorted([str(broken), str(truncated)])
    assert (data.train_labels.numel(), data.val_labels.numel()) == (17, 8)
    assert data.description()["skipped"] == 2
    assert load_data(config(food_root, tmp_path / "cache"), progress=False).description()["skipped"] == 2


def test_imagefolder_seeded_validation_split(tmp_path: Path) -> None:
    for c, name in enumerate(("cat", "dog")):
        for i in range(10):
            write_jpeg(tmp_path / "tree" / name / f"{i}.jpg", seed=100 * c + i)
    (tmp_path / "tree" / "dog" / "notes.txt").write_text("not an image")
    settings = dict(name="imagefolder", root=str(tmp_path / "tree"), resolution=16, cache_dir=str(tmp_path / "c"))
    data = load_data(DataConfig(**settings), progress=False)
    assert data.per_class_counts("train") == {"cat": 8, "dog": 8}  # 20 % validation by default
    assert data.per_class_counts("val") == {"cat": 2, "dog": 2}
    sized = load_data(DataConfig(**settings, train_per_class=5, val_per_class=3), progress=False)
    assert (sized.train_labels.numel(), sized.val_labels.numel()) == (10, 6)
    with pytest.raises(DataError, match="lower --train-per-class"):
        load_data(DataConfig(**settings, train_per_class=8, val_per_class=3), progress=False)


def test_embedded_digits_are_real_images() -> None:
    data = load_data(
        DataConfig(name="embedded", classes=4, train_per_class=20, val_per_class=10, resolution=32), progress=False
    )
    assert data.name == "digits" and data.class_names == ["0", "1", "2", "3"]
    assert tuple(data.train_images.shape) == (80, 3, 32, 32)
    assert torch.equal(data.train_images[:, 0], data.train_images[:, 2])  # grey replicated to 3 channels
    # real digits: the class means differ far more than noise would (a 0 is a ring, a 1 a stroke)
    means = torch.stack([data.train_images[data.train_labels == k].float().mean(0) for k in range(4)])
    assert (means[0] - means[1]).abs().mean() > 20
    assert data.train_images.max() >= 250 and data.train_images.min() == 0


def test_auto_dataset_prefers_food101_at_the_data_root(
    food_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2GCSEARCH_DATA", str(food_root))
    assert resolve_dataset(DataConfig())[0] == "food101"
    monkeypatch.setenv("E2GCSEARCH_DATA", str(tmp_path / "empty"))
    name, root, note = resolve_dataset(DataConfig())
    assert (name, root) == ("digits", None)
    assert "digits" in note and "--data food101 --data-root" in note and "E2GCSEARCH_DATA" in note


def test_augmentation_is_seeded_and_keeps_shape() -> None:
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    mean, std = channel_stats(images)
    first = augment_batch(images, mean, std, torch.Generator().manual_seed(3))
    again = augment_batch(images, mean, std, torch.Generator().manual_seed(3))
    other = augment_batch(images, mean, std, torch.Generator().manual_seed(4))
    assert first.shape == (8, 3, 16, 16) and first.dtype == torch.float32
    assert torch.equal(first, again) and not torch.equal(first, other)
    plain = augment_batch(images, mean, std, torch.Generator(), mode="none")
    assert torch.allclose(plain, normalize_batch(images, mean, std))
    assert abs(float(plain.mean())) < 0.1 and abs(float(plain.std()) - 1.0) < 0.1


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--data", "food101", "--data-root", "{tmp}/missing"], "no Food-101 found"),
        (["--data", "cifar10"], "unknown dataset 'cifar10'"),
        (["--data", "food101", "--data-root", "{food}", "--train-per-class", "50"], "use --train-per-class 6 or fewer"),
        (["--data", "food101", "--data-root", "{food}", "--classes", "apple_pie,bakalava"], "did you mean baklava"),
        (["--data", "food101", "--data-root", "{food}", "--classes", "7"], "use --classes 3 or fewer"),
    ],
)
def test_cli_bad_data_input_exits_2_with_the_fix(
    argv: list[str], expected: str, food_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(tmp=tmp_path, food=food_root) for a in argv]
    code = main(
        [
            "train",
            "mobilenet_v1",
            "-G",
            "8",
            "--width",
            "0.25",
            "--resolution",
            "32",
            "--cache-dir",
            str(tmp_path / "cache"),
            *argv,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1

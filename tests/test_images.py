"""Image files as arrays: which files count, how pixels map to values, and clear errors."""

import numpy as np
import pytest
from PIL import Image

from hybrid.images import list_images, load_images
from hybrid.errors import HybridError


def _save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return path


def test_list_images_is_recursive_sorted_and_skips_other_files(tmp_path):
    square = np.zeros((4, 4))
    names = ["a.png", "b.JPG", "sub/c.bmp", "sub/d.gif"]
    expected = [_save(tmp_path / name, square) for name in names]
    (tmp_path / "notes.txt").write_text("not an image")
    assert list_images(tmp_path) == expected


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None],
                         ids=["empty folder", "missing folder"])
def test_a_folder_without_images_is_named(tmp_path, make):
    folder = tmp_path / "images"
    make(folder)
    with pytest.raises(HybridError, match=str(folder)):
        list_images(folder)


def test_pixels_map_linearly_onto_the_value_range(tmp_path):
    path = _save(tmp_path / "ramp.png", [[0, 51, 255]])
    images = load_images([path], channels=1, height=1, width=3, value_range=(0.0, 16.0))
    assert images.dtype == np.float32 and images.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(images[0, 0, 0], [0.0, 3.2, 16.0], rtol=1e-6)
    assert images[0, 0, 0, 2] == 16.0


def test_shrinking_averages_blocks(tmp_path):
    big = np.kron([[0, 255], [255, 0]], np.ones((4, 4)))  # 8x8 of four flat 4x4 blocks
    big[:4, :4] = [[0, 0, 255, 255]] * 4  # the top-left block averages to half
    images = load_images([_save(tmp_path / "big.png", big)], 1, 2, 2)
    np.testing.assert_allclose(images[0, 0], [[127.5, 255], [255, 0]], atol=0.5)


def test_color_files_read_as_grayscale_or_rgb(tmp_path):
    path = _save(tmp_path / "red.png", np.tile([255, 0, 0], (2, 2, 1)))
    assert load_images([path], 3, 2, 2)[0, :, 0, 0].tolist() == [255, 0, 0]
    assert load_images([path], 1, 2, 2).shape == (1, 1, 2, 2)


@pytest.mark.parametrize("content", [b"", b"not an image", None],
                         ids=["empty", "text", "truncated"])
def test_an_unreadable_file_is_named(tmp_path, content):
    path = tmp_path / "broken.png"
    if content is None:
        _save(path, np.arange(64).reshape(8, 8))
        content = path.read_bytes()[:40]
    path.write_bytes(content)
    with pytest.raises(HybridError, match="broken.png"):
        load_images([path], 1, 8, 8)

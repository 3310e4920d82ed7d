"""A procedural benchmark with a known answer: coloured shapes whose class a rule list decides.

Each image shows one object (or up to ``max_objects``) with four attributes: shape (circle,
square, triangle), color (red, green, blue), size (small, large) and texture (solid, striped).
A generating rule over those attributes, written in the config, gives the class, so a rule list
distilled from a CNN can be compared with the truth (:func:`parse_rule`,
:meth:`GeneratingRule.to_rule_list_model`). Every image comes with its concept vector and a
pixel mask of its objects. Nothing is downloaded: the images are drawn with numpy in setup.
"""

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt, Lt

from ..errors import ConfigError
from ._memory import SPLITS, InMemoryDataModule, Pool
from ._shape_rule import (ATTRIBUTES, DEFAULT_RULE, OBJECT_CONCEPTS, GeneratingRule,
                          parse_rule)

__all__ = ["ShapesDataModule", "GeneratingRule", "parse_rule", "ATTRIBUTES", "OBJECT_CONCEPTS",
           "MARK_CONCEPT", "DEFAULT_RULE"]

#: The concept of the spurious corner mark, appended to the concepts when ``spurious`` is set.
MARK_CONCEPT = "mark=corner"

_TEST_MODES = ("random", "correlated", "absent")
_SPURIOUS_KEYS = ("class_name", "train_fraction", "test")

# Saturated RGB per color value, in ATTRIBUTES["color"] order; stripes are the same hue darker.
_PALETTE = np.array([[225, 35, 35], [35, 200, 55], [45, 85, 240]], dtype=np.float32)
_STRIPE_SHADE = 0.35
# Paint 2c is colour c, 2c+1 its stripe shade.
_PAINTS = np.rint(np.stack([_PALETTE, _PALETTE * _STRIPE_SHADE], axis=1).reshape(-1, 3)
                  ).astype(np.uint8)
_STRIPE_WIDTH = 2
_BACKGROUND = 90.0  # dim gray, well below every colour's bright channel
# Object diameter as a fraction of its cell, per size value: 9-11 px and 17-20 px at 32x32.
_DIAMETER = np.array([[0.28, 0.34], [0.53, 0.62]], dtype=np.float32)
_SQUARE_HALF_SIDE = 0.9  # of the radius: a square's area close to the circle's
_MIN_CELL = 24  # px per object: below it, small striped objects blur into solid ones
_MARK = slice(1, 4)  # the corner mark: white 3x3 pixels one pixel in from the top-left corner
_KEEP_OUT = 6  # objects stay off [0, 6) x [0, 6): the mark plus a two-pixel gap
_CELL_MARGIN = 1.0  # px between an object and its cell's edge, so neighbours never touch
_MIN_CANDIDATES = 4096
_MAX_SCENE_ROUNDS = 64


@dataclass(frozen=True)
class _Cue:
    """The validated ``spurious`` parameter."""

    class_index: int
    train_fraction: float
    test: str


@dataclass(frozen=True)
class _Scenes:
    """Objects of n images: ``attributes`` (n, max_objects, 4) value indices in ATTRIBUTES
    order, ``present`` (n, max_objects) whether the slot holds an object."""

    attributes: np.ndarray
    present: np.ndarray

    def __len__(self) -> int:
        return len(self.present)

    def take(self, rows) -> "_Scenes":
        return _Scenes(self.attributes[rows], self.present[rows])

    @staticmethod
    def concatenate(parts) -> "_Scenes":
        return _Scenes(np.concatenate([p.attributes for p in parts]),
                       np.concatenate([p.present for p in parts]))

    def concepts(self) -> np.ndarray:
        """(n, len(OBJECT_CONCEPTS)) bool: some object of the image has the attribute value."""
        columns = [np.any(self.present & (self.attributes[..., a] == v), axis=1)
                   for a, values in enumerate(ATTRIBUTES.values()) for v in range(len(values))]
        return np.stack(columns, axis=1)


class ShapesDataModule(InMemoryDataModule):
    """Seeded images of coloured shapes labelled by a known rule list over their attributes.

    Batches are ``(image, label, index, concepts)``: ``index`` is unique across splits (train
    rows first, then val, then test) and ``concepts`` is the float32 concept vector named by
    ``concept_names``. Pixels run 0..255 and are scaled by the training split's mean and
    standard deviation.

    Objects: each is drawn in its own cell of a ``g x g`` grid, ``g = ceil(sqrt(max_objects))``
    (the whole image for one object), at a random position and a random diameter (small: 28-34 %
    of the cell, large: 53-62 %), so objects never overlap. Stripes are diagonal,
    2 px wide, alternating the colour and a darker shade of it. The background is dim gray with
    seeded Gaussian noise; objects are noise-free. Objects always stay off the top-left corner,
    where the spurious mark goes, so the mark never covers an object.

    Parameters
    ----------
    rule : str, default="IF color=red AND shape=circle THEN A ELSE IF size=large AND
        texture=striped THEN B ELSE IF color=blue THEN C ELSE D"
        The generating rule list (grammar in :func:`parse_rule`); its THEN/ELSE labels, in
        order of first appearance, are the classes.
    n_train, n_val, n_test : int, default=4000, 1000, 1000
        Images per split.
    image_size : int, default=32
        Height and width; each object's cell must be 24 px or more (48 for ``max_objects``
        2 to 4, 72 for 5 to 9).
    max_objects : int, default=1
        Above 1, each image holds 1 to ``max_objects`` objects (uniformly many) and a concept
        means "some object has it".
    noise_std : float, default=12.0
        Standard deviation of the background noise, in pixel values (0..255).
    label_noise : float, default=0.0
        Share of train and val labels replaced by a random other class (exactly
        ``round(label_noise * n)`` rows per split, seeded). Test labels stay clean, so test
        accuracy measures the rule; concepts, images and the spurious mark follow the clean
        labels (:meth:`labels` with ``clean=True``).
    balance : bool, default=True
        Sample each split's classes as evenly as possible: random scenes (uniform attributes)
        are drawn and kept per class until each class has ``n // num_classes`` images (the
        first ``n % num_classes`` classes one more). Within a class, scenes keep their
        natural distribution. Without it attributes are uniform and classes fall where the
        rule puts them (the default rule gives A only 1/9 of the images).
    spurious : dict, default=None
        A shortcut: a white 3x3 mark in the top-left corner, concept ``mark=corner``.
        ``{class_name: A, train_fraction: 1.0, test: random}``: in train and val, with
        probability ``train_fraction`` the mark is present iff the image's class is
        ``class_name``, otherwise present with probability 0.5; in test, per ``test``:
        ``random`` (p=0.5 regardless of class), ``correlated`` (as in train) or ``absent``.
    seed : int, default=0
        Seeds everything; separate streams per split and purpose, so label noise or the mark
        never changes the objects.
    batch_size : int, default=64
    num_workers : int, default=0
        The data sit in memory; worker processes would only add start-up time.
    normalization : tuple of float, default=None
        ``(mean, std)`` to scale pixels with; None computes them on the training split.

    Attributes
    ----------
    generating_rule : GeneratingRule
        The parsed ``rule``; ``generating_rule.to_rule_list_model(concept_names)`` is the truth
        in the rules IR.
    class_names : tuple of str
    concept_names : tuple of str
        ``shape=circle, shape=square, shape=triangle, color=red, color=green, color=blue,
        size=small, size=large, texture=solid, texture=striped``, then ``mark=corner`` when
        ``spurious`` is set.
    normalization : tuple of float
        ``(mean, std)`` set by ``setup``.
    """

    value_range = (0.0, 255.0)

    def __init__(self, rule: str = DEFAULT_RULE, n_train: Annotated[int, Gt(0)] = 4000,
                 n_val: Annotated[int, Gt(0)] = 1000, n_test: Annotated[int, Gt(0)] = 1000,
                 image_size: Annotated[int, Ge(_MIN_CELL)] = 32,
                 max_objects: Annotated[int, Ge(1)] = 1,
                 noise_std: Annotated[float, Ge(0)] = 12.0,
                 label_noise: Annotated[float, Ge(0), Lt(1)] = 0.0, balance: bool = True,
                 spurious: dict | None = None, seed: Annotated[int, Ge(0)] = 0,
                 batch_size: Annotated[int, Gt(0)] = 64, num_workers: Annotated[int, Ge(0)] = 0,
                 normalization: tuple[float, Annotated[float, Gt(0)]] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.generating_rule = parse_rule(rule)
        self.class_names = self.generating_rule.class_names
        self._grid = int(np.ceil(np.sqrt(max_objects)))
        if image_size / self._grid < _MIN_CELL:
            raise ConfigError(f"key 'data.params.image_size': {image_size} px is too small for "
                              f"max_objects={max_objects} ({self._grid}x{self._grid} cells of "
                              f"at least {_MIN_CELL} px); use image_size >= "
                              f"{self._grid * _MIN_CELL}")
        self._cue = _check_spurious(spurious, self.class_names)
        self.concept_names = OBJECT_CONCEPTS + ((MARK_CONCEPT,) if self._cue else ())
        self.input_shape = (3, image_size, image_size)
        self._arrays: dict[str, dict[str, np.ndarray]] = {}

    def _load(self) -> Pool:
        """The three splits one after the other: train rows first, then val, then test."""
        sizes = (self.hparams.n_train, self.hparams.n_val, self.hparams.n_test)
        self._arrays = {split: self._generate(split, number, n)
                        for number, (split, n) in enumerate(zip(SPLITS, sizes))}
        rows = {split: np.arange(end - n, end)
                for split, n, end in zip(SPLITS, sizes, np.cumsum(sizes))}
        # Popped: the base keeps each split's images for display_images; no second copy.
        images = np.concatenate([arrays.pop("images") for arrays in self._arrays.values()])
        labels, concepts = (np.concatenate([arrays[key] for arrays in self._arrays.values()])
                            for key in ("labels", "concepts"))
        return Pool(images.transpose(0, 3, 1, 2), labels, rows, concepts.astype(np.float32))

    def _generate(self, split: str, number: int, n: int) -> dict[str, np.ndarray]:
        """Images, masks, concepts and labels of one split; each purpose has its own stream."""
        def stream(purpose: int) -> np.random.Generator:
            return np.random.default_rng([self.hparams.seed, number, purpose])

        scenes = self._scenes(n, stream(0))
        objects = scenes.concepts()
        clean = self.generating_rule.labels(objects)
        images, masks = _draw(scenes, self.hparams.image_size, self._grid,
                              self.hparams.noise_std, stream(1))
        concepts = objects
        if self._cue:
            mark = _mark(clean, self._cue, split, stream(2))
            images[mark, _MARK, _MARK] = 255
            concepts = np.column_stack([objects, mark])
        labels = clean
        if split != "test":
            labels = _noisy(clean, self.hparams.label_noise, self.num_classes, stream(3))
        return {"images": images, "masks": masks, "concepts": concepts.astype(np.uint8),
                "labels": labels, "clean_labels": clean}

    def _scenes(self, n: int, rng: np.random.Generator) -> _Scenes:
        """``n`` scenes with uniform attributes; with ``balance``, as many per class as can be."""
        if not self.hparams.balance:
            return _random_scenes(n, self.hparams.max_objects, rng)
        classes = self.num_classes
        quotas = n // classes + (np.arange(classes) < n % classes)
        missing, parts = quotas.copy(), []
        batch = max(_MIN_CANDIDATES, 4 * n)
        for _ in range(_MAX_SCENE_ROUNDS):
            candidates = _random_scenes(batch, self.hparams.max_objects, rng)
            labels = self.generating_rule.labels(candidates.concepts())
            rows = np.concatenate([np.flatnonzero(labels == k)[:missing[k]]
                                   for k in range(classes)])
            parts.append(candidates.take(rows))
            missing -= np.bincount(labels[rows], minlength=classes)
            if not missing.any():
                return _Scenes.concatenate(parts).take(rng.permutation(n))
        rare = int(np.argmax(missing > 0))
        raise ConfigError(f"key 'data.params.rule': class {self.class_names[rare]!r} came up "
                          f"in only {quotas[rare] - missing[rare]} of "
                          f"{batch * _MAX_SCENE_ROUNDS} random scenes, too rare to balance (its "
                          f"rule may be shadowed by earlier ones); change the rule or set "
                          f"data.params.balance: false")

    def concepts(self, split: str) -> np.ndarray:
        """The split's concept vectors as uint8 (n, len(concept_names)), in loader order."""
        return self._arrays[split]["concepts"]

    def masks(self, split: str) -> np.ndarray:
        """Pixels covered by an object, bool (n, H, W), in loader order."""
        return self._arrays[split]["masks"]

    def labels(self, split: str, clean: bool = False) -> np.ndarray:
        """Class indices (n,) as in the batches; ``clean`` gives the generating rule's labels
        before ``label_noise``."""
        return self._arrays[split]["clean_labels" if clean else "labels"]


def _check_spurious(spurious, class_names) -> _Cue | None:
    """The ``spurious`` mapping validated, each bad key named."""
    if spurious is None:
        return None
    where = "data.params.spurious"
    if not isinstance(spurious, dict):
        raise ConfigError(f"key '{where}': expected a mapping such as {{class_name: "
                          f"{class_names[0]}, train_fraction: 1.0, test: random}}, "
                          f"got {spurious!r}")
    for key in spurious:
        if key not in _SPURIOUS_KEYS:
            raise ConfigError(f"unknown key '{where}.{key}'; valid keys: "
                              f"{', '.join(_SPURIOUS_KEYS)}")
    name = spurious.get("class_name")
    if name is None or str(name) not in class_names:
        raise ConfigError(f"key '{where}.class_name': {name!r} is not a class of the rule; "
                          f"choose from: {', '.join(class_names)}")
    fraction = spurious.get("train_fraction", 1.0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0 <= fraction <= 1:
        raise ConfigError(f"key '{where}.train_fraction': expected a number from 0 to 1, "
                          f"got {fraction!r}")
    test = spurious.get("test", "random")
    if test not in _TEST_MODES:
        raise ConfigError(f"key '{where}.test': {test!r} is not a test mode; choose from: "
                          f"{', '.join(_TEST_MODES)}")
    return _Cue(class_names.index(str(name)), float(fraction), test)


def _random_scenes(n: int, max_objects: int, rng: np.random.Generator) -> _Scenes:
    """1 to ``max_objects`` objects per image (uniformly many), attributes uniform."""
    counts = rng.integers(1, max_objects + 1, n)
    attributes = np.stack([rng.integers(0, len(values), (n, max_objects))
                           for values in ATTRIBUTES.values()], axis=-1)
    return _Scenes(attributes, np.arange(max_objects) < counts[:, None])


def _draw(scenes: _Scenes, size: int, grid: int, noise_std: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Render the scenes: uint8 images (n, size, size, 3) and bool object masks (n, size, size).

    Object slot j of every image is drawn at once: coordinate grids minus per-image centres
    give each shape's mask by one comparison. Pixels first get a paint index (colour and
    stripe shade), then one lookup colours them all.
    """
    n, max_objects = scenes.present.shape
    cell = size / grid
    cells = np.argsort(rng.random((n, grid * grid)), axis=1)[:, :max_objects]
    paint = np.full((n, size, size), -1, dtype=np.int8)  # row of _PAINTS; -1: background
    coordinate = np.arange(size)
    stripes = ((coordinate[:, None] + coordinate[None, :]) // _STRIPE_WIDTH) % 2 == 1
    for slot in range(max_objects):
        rows = np.flatnonzero(scenes.present[:, slot])
        shape, color, large, striped = scenes.attributes[rows, slot].T
        low, high = _DIAMETER[large].T
        radius = (low + (high - low) * rng.random(len(rows), dtype=np.float32)) * cell / 2
        cy, cx = _centres(cells[rows, slot], radius, cell, grid, rng)
        mask = _object_masks(shape, cy, cx, radius, size)
        dark = striped.astype(bool)[:, None, None] & stripes
        paint[rows] = np.where(mask, (2 * color).astype(np.int8)[:, None, None] + dark,
                               paint[rows])
    background = rng.standard_normal((n, size, size, 3), dtype=np.float32)
    background *= np.float32(noise_std)  # in place: the largest array here
    background += np.float32(_BACKGROUND)
    np.clip(np.rint(background, out=background), 0, 255, out=background)
    masks = paint >= 0
    return np.where(masks[..., None], _PAINTS[paint], background.astype(np.uint8)), masks


def _object_masks(shape, cy, cx, radius, size: int) -> np.ndarray:
    """bool (m, size, size): the pixels whose centres lie inside each object."""
    centre = np.arange(size, dtype=np.float32) + np.float32(0.5)
    masks = np.empty((len(shape), size, size), dtype=bool)
    for index, inside in enumerate(_SHAPES):
        rows = shape == index
        masks[rows] = inside(centre[None, :, None] - cy[rows, None, None],
                             centre[None, None, :] - cx[rows, None, None],
                             radius[rows, None, None])
    return masks


def _circle(dy, dx, r):
    return dx * dx + dy * dy <= r * r


def _square(dy, dx, r):
    return np.maximum(np.abs(dx), np.abs(dy)) <= _SQUARE_HALF_SIDE * r


def _triangle(dy, dx, r):
    """Pointing up: apex at the top of the circle's box, base along its bottom edge."""
    return (dy <= r) & (np.abs(dx) <= (dy + r) / 2)


_SHAPES = (_circle, _square, _triangle)  # ATTRIBUTES["shape"] order


def _centres(cells: np.ndarray, radius: np.ndarray, cell: float, grid: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random object centres ``(cy, cx)`` inside each object's cell, clear of the cell's edge
    and, in the top-left cell, of the mark's corner (redrawn until clear)."""
    row, col = np.divmod(cells, grid)
    low = radius + _CELL_MARGIN
    span = cell - 2 * low  # >= 0: a large object fills at most 62 % of its cell
    cy = row * cell + low + span * rng.random(len(cells), dtype=np.float32)
    cx = col * cell + low + span * rng.random(len(cells), dtype=np.float32)
    while True:
        # Only the top-left cell reaches the corner (cells are >= 24 px), so no offset below.
        blocked = np.flatnonzero((cy - radius < _KEEP_OUT) & (cx - radius < _KEEP_OUT))
        if not len(blocked):
            return cy, cx
        cy[blocked] = low[blocked] + span[blocked] * rng.random(len(blocked), dtype=np.float32)
        cx[blocked] = low[blocked] + span[blocked] * rng.random(len(blocked), dtype=np.float32)


def _mark(labels: np.ndarray, cue: _Cue, split: str, rng: np.random.Generator) -> np.ndarray:
    """Whether each image carries the corner mark (see ``spurious``)."""
    mode = "correlated" if split != "test" else cue.test
    if mode == "absent":
        return np.zeros(len(labels), dtype=bool)
    coin = rng.random(len(labels)) < 0.5
    if mode == "random":
        return coin
    aligned = rng.random(len(labels)) < cue.train_fraction
    return np.where(aligned, labels == cue.class_index, coin)


def _noisy(labels: np.ndarray, rate: float, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``labels`` with ``round(rate * n)`` random rows moved to a random other class."""
    rows = rng.choice(len(labels), size=int(round(rate * len(labels))), replace=False)
    noisy = labels.copy()
    noisy[rows] = (labels[rows] + rng.integers(1, n_classes, len(rows))) % n_classes
    return noisy

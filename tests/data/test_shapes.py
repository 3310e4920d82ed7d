"""The shapes benchmark: its rule parser, labels, drawings, splits and shortcut."""

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from hybrid.config import check_params, load_config
from hybrid.data import DATAMODULES
from hybrid.data.shapes import (ATTRIBUTES, DEFAULT_RULE, MARK_CONCEPT, OBJECT_CONCEPTS,
                                GeneratingRule, ShapesDataModule, parse_rule)
from hybrid.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SMALL = {"n_train": 400, "n_val": 200, "n_test": 200}
CONCEPTS = ("shape=circle", "shape=square", "shape=triangle", "color=red", "color=green",
            "color=blue", "size=small", "size=large", "texture=solid", "texture=striped")


def _module(**params) -> ShapesDataModule:
    datamodule = ShapesDataModule(**{**SMALL, **params})
    datamodule.setup()
    return datamodule


@pytest.fixture(scope="module")
def shapes():
    return _module(label_noise=0.1)


@pytest.fixture(scope="module")
def crowded():
    return _module(max_objects=4, image_size=48, n_train=300, n_val=50, n_test=50)


def _vector(**attributes) -> np.ndarray:
    """A single object's concept vector, e.g. ``_vector(shape="circle", color="red", ...)``."""
    present = {f"{a}={v}" for a, v in attributes.items()}
    return np.array([name in present for name in CONCEPTS], dtype=np.float32)


def _every_object() -> np.ndarray:
    """The 36 single-object concept vectors, shape (36, 10)."""
    return np.stack([_vector(**dict(zip(ATTRIBUTES, values)))
                     for values in itertools.product(*ATTRIBUTES.values())])


# --- the generating rule -------------------------------------------------------------------

def test_concept_names_in_documented_order():
    assert OBJECT_CONCEPTS == CONCEPTS
    assert ShapesDataModule(**SMALL).concept_names == CONCEPTS
    assert ShapesDataModule(**SMALL, spurious={"class_name": "A"}).concept_names == \
        (*CONCEPTS, MARK_CONCEPT)


def test_parse_default_rule():
    rule = parse_rule(DEFAULT_RULE)
    assert rule == GeneratingRule(
        rules=(((("color=red", True), ("shape=circle", True)), "A"),
               ((("size=large", True), ("texture=striped", True)), "B"),
               ((("color=blue", True),), "C")),
        default="D")
    assert rule.class_names == ("A", "B", "C", "D")
    assert rule.text() == DEFAULT_RULE


def test_parse_is_case_and_whitespace_tolerant_and_reads_not():
    rule = parse_rule("  if Color = RED and not size=large\n then hot\telse IF NOT color=red "
                      "THEN cold ELSE lukewarm ")
    assert rule.rules == (((("color=red", True), ("size=large", False)), "hot"),
                          ((("color=red", False),), "cold"))
    assert rule.text() == ("IF color=red AND NOT size=large THEN hot ELSE IF NOT color=red "
                           "THEN cold ELSE lukewarm")
    assert parse_rule(rule.text()) == rule


def test_class_names_follow_first_appearance():
    rule = parse_rule("IF shape=square THEN x ELSE IF shape=circle THEN y "
                      "ELSE IF size=small THEN x ELSE z")
    assert rule.class_names == ("x", "y", "z")


@pytest.mark.parametrize("text, expected", [
    ("", "the rule is empty"),
    ("color=red THEN A ELSE B", "expected IF at character 1 ('color')"),
    ("IF colour=red THEN A ELSE B", "unknown attribute 'colour' at character 4"),
    ("IF color=pink THEN A ELSE B", "unknown value 'pink' of color (valid: red, green, blue)"),
    ("IF color red THEN A ELSE B", "expected '=' after the attribute 'color' at character 10"),
    ("IF color= THEN A ELSE B", "expected a value of color at character 11 ('THEN')"),
    ("IF color=red A ELSE B", "expected THEN at character 14 ('A')"),
    ("IF color=red THEN A", "expected ELSE at the end"),
    ("IF color=red THEN A ELSE", "expected a class name at the end"),
    ("IF color=red THEN A ELSE IF", "expected an attribute at the end"),
    ("IF color=red THEN A ELSE B C", "expected the end of the rule after the final ELSE class "
                                     "at character 28 ('C')"),
    ("IF color=red THEN A ELSE THEN", "expected a class name at character 26 ('THEN')"),
    ("IF color=red THEN A! ELSE B", "class name 'A!' must be letters"),
    ("IF color=red THEN A ELSE A", "has one class (A)"),
])
def test_parse_errors_name_the_key_and_the_token(text, expected):
    with pytest.raises(ConfigError) as caught:
        parse_rule(text)
    message = str(caught.value)
    assert message.startswith("key 'data.params.rule': ")
    assert expected in message


def test_condition_errors_list_the_attributes_and_structure_errors_the_grammar():
    with pytest.raises(ConfigError, match="attributes: shape=circle|square|triangle, "
                                          "color=red|green|blue, size=small|large, "
                                          "texture=solid|striped"):
        parse_rule("IF shape=oval THEN A ELSE B")
    with pytest.raises(ConfigError, match=r"grammar: IF \[NOT\] attribute=value"):
        parse_rule("IF shape=circle A ELSE B")


def test_labels_of_hand_made_concept_vectors():
    rule = parse_rule(DEFAULT_RULE)
    vectors = np.stack([
        _vector(shape="circle", color="red", size="large", texture="striped"),  # A first
        _vector(shape="square", color="red", size="large", texture="striped"),  # B
        _vector(shape="circle", color="blue", size="large", texture="striped"),  # B before C
        _vector(shape="circle", color="blue", size="small", texture="striped"),  # C
        _vector(shape="triangle", color="green", size="large", texture="solid"),  # D
        _vector(shape="square", color="red", size="small", texture="solid"),  # D
    ])
    assert rule.labels(vectors).tolist() == [0, 1, 1, 2, 3, 3]
    negated = parse_rule("IF NOT color=red AND NOT shape=circle THEN other ELSE red_or_round")
    assert negated.labels(vectors).tolist() == [1, 1, 1, 1, 0, 1]


def test_labels_read_columns_by_name():
    rule = parse_rule(DEFAULT_RULE)
    vectors = _every_object()
    with_mark = np.column_stack([vectors, np.ones(len(vectors))])
    names = (*CONCEPTS, MARK_CONCEPT)
    assert np.array_equal(rule.labels(with_mark, names), rule.labels(vectors))
    with pytest.raises(ValueError, match="expected \\(n_samples, 10\\)"):
        rule.labels(with_mark)
    with pytest.raises(ValueError, match="'color=red', which is not among"):
        rule.labels(vectors[:, 4:], CONCEPTS[4:])


@pytest.mark.parametrize("text", [
    DEFAULT_RULE,
    "IF NOT texture=solid AND NOT shape=triangle THEN s ELSE IF size=small THEN t ELSE u",
])
def test_rule_list_model_predicts_exactly_the_labels(text):
    rule = parse_rule(text)
    rng = np.random.default_rng(0)
    matrices = [_every_object(), (rng.random((500, 10)) < 0.4).astype(np.float32)]
    for concepts in matrices:
        model = rule.to_rule_list_model()
        assert np.array_equal(model.predict_index(concepts), rule.labels(concepts))
        assert model.feature_names == CONCEPTS
        assert model.class_names == rule.class_names
    names = (*CONCEPTS, MARK_CONCEPT)
    with_mark = np.column_stack([matrices[1], rng.random(500) < 0.5])
    model = rule.to_rule_list_model(names, concepts=with_mark)
    assert np.array_equal(model.predict_index(with_mark), rule.labels(with_mark, names))
    assert [r.support for r in model.rules] == np.bincount(model.apply(with_mark),
                                                           minlength=len(model.rules)).tolist()
    assert all(r.precision == 1.0 and max(r.proba) == 1.0 for r in model.rules)


def test_rule_list_model_exports_as_the_rule():
    from hybrid.exporters.text import to_text

    text = to_text(parse_rule("IF color=red AND NOT size=large THEN hot ELSE cold")
                   .to_rule_list_model())
    assert "IF color=red > 0.5 AND size=large <= 0.5 THEN hot" in text
    assert "ELSE cold" in text


# --- the data module -----------------------------------------------------------------------

def test_registered_and_checked_like_every_data_module():
    assert DATAMODULES.get("shapes") is ShapesDataModule
    check_params(ShapesDataModule, {"rule": DEFAULT_RULE, "n_train": 10, "spurious": None},
                 "data.params")
    with pytest.raises(ConfigError, match="data.params.label_noise"):
        check_params(ShapesDataModule, {"label_noise": 1.0}, "data.params")
    with pytest.raises(ConfigError, match="data.params.image_size"):
        check_params(ShapesDataModule, {"image_size": 16}, "data.params")


@pytest.mark.parametrize("params, expected", [
    ({"spurious": {"class_name": "E"}},
     "key 'data.params.spurious.class_name': 'E' is not a class of the rule; "
     "choose from: A, B, C, D"),
    ({"spurious": {}}, "key 'data.params.spurious.class_name': None"),
    ({"spurious": {"class_name": "A", "fraction": 1}},
     "unknown key 'data.params.spurious.fraction'; valid keys: class_name, train_fraction, test"),
    ({"spurious": {"class_name": "A", "train_fraction": 1.5}},
     "key 'data.params.spurious.train_fraction': expected a number from 0 to 1, got 1.5"),
    ({"spurious": {"class_name": "A", "test": "shuffled"}},
     "key 'data.params.spurious.test': 'shuffled' is not a test mode; "
     "choose from: random, correlated, absent"),
    ({"spurious": "A"}, "key 'data.params.spurious': expected a mapping"),
    ({"max_objects": 2}, "key 'data.params.image_size': 32 px is too small for max_objects=2"),
    ({"rule": "IF color=red THEN"}, "key 'data.params.rule'"),
])
def test_bad_params_name_the_key(params, expected):
    with pytest.raises(ConfigError) as caught:
        ShapesDataModule(**params)
    assert expected in str(caught.value)


def test_balance_refuses_a_class_the_rule_never_gives():
    with pytest.raises(ConfigError, match="class 'never' came up in only 0 of .* set "
                                          "data.params.balance: false"):
        _module(rule="IF size=small THEN s ELSE IF size=large THEN l ELSE never",
                n_train=20, n_val=20, n_test=20)


def test_same_seed_same_data_other_seed_other_data():
    first, again, other = _module(seed=3), _module(seed=3), _module(seed=4)
    for split in ("train", "val", "test"):
        for method in ("display_images", "masks", "concepts", "labels"):
            assert np.array_equal(getattr(first, method)(split), getattr(again, method)(split))
        assert not np.array_equal(first.display_images(split), other.display_images(split))
        assert not np.array_equal(first.concepts(split), other.concepts(split))


def test_label_noise_and_the_mark_leave_the_objects_alone(shapes):
    plain = _module(spurious={"class_name": "B"})
    assert np.array_equal(plain.masks("train"), shapes.masks("train"))
    assert np.array_equal(plain.concepts("train")[:, :-1], shapes.concepts("train"))
    away_from_mark = (slice(None), slice(4, None))
    assert np.array_equal(plain.display_images("train")[away_from_mark],
                          shapes.display_images("train")[away_from_mark])


def test_one_object_one_value_per_attribute(shapes):
    concepts = shapes.concepts("train")
    assert concepts.dtype == np.uint8 and concepts.shape == (400, 10)
    start = 0
    for values in ATTRIBUTES.values():
        assert np.all(concepts[:, start:start + len(values)].sum(axis=1) == 1)
        start += len(values)


def _object_stats(datamodule, split):
    """Per image: mean colour, pixel area, bounding-box fill and the largest per-channel
    standard deviation of the object pixels."""
    images, masks = datamodule.display_images(split), datamodule.masks(split)
    colour, area, fill, spread = [], [], [], []
    for image, mask in zip(images, masks):
        pixels = image[mask].astype(np.float64)
        colour.append(pixels.mean(axis=0))
        area.append(mask.sum())
        fill.append(mask.sum() / (mask.any(axis=1).sum() * mask.any(axis=0).sum()))
        spread.append(pixels.std(axis=0).max())
    return np.array(colour), np.array(area), np.array(fill), np.array(spread)


def test_concepts_agree_with_the_drawing(shapes):
    concepts = shapes.concepts("train").astype(bool)
    column = {name: j for j, name in enumerate(shapes.concept_names)}
    colour, area, fill, spread = _object_stats(shapes, "train")
    for channel, name in enumerate(("color=red", "color=green", "color=blue")):
        assert np.all(colour[concepts[:, column[name]]].argmax(axis=1) == channel)
    small, large = concepts[:, column["size=small"]], concepts[:, column["size=large"]]
    assert area[large].min() > area[small].max()
    assert np.all(fill[concepts[:, column["shape=square"]]] == 1.0)
    assert np.all((fill[concepts[:, column["shape=circle"]]] > 0.65)
                  & (fill[concepts[:, column["shape=circle"]]] < 0.95))
    assert np.all(fill[concepts[:, column["shape=triangle"]]] < 0.65)
    assert np.all(spread[concepts[:, column["texture=solid"]]] == 0)
    assert np.all(spread[concepts[:, column["texture=striped"]]] > 30)


def test_many_objects_concepts_mean_some_object_has_it(crowded):
    palette = {tuple(p) for p in np.unique(crowded.display_images("train")[crowded.masks("train")],
                                           axis=0)}
    assert len(palette) == 6  # three colours, each bright and in stripe shade
    concepts = crowded.concepts("train").astype(bool)
    colours = concepts[:, 3:6]
    assert 1 < colours.sum(axis=1).max() <= 3
    for image, mask, wanted in zip(crowded.display_images("train"), crowded.masks("train"),
                                   colours):
        dominant = np.unique(image[mask].argmax(axis=1))
        assert np.array_equal(np.flatnonzero(wanted), dominant)
    labels = crowded.generating_rule.labels(concepts)
    assert np.array_equal(labels, crowded.labels("train"))


def test_balance_evens_out_the_classes(shapes):
    for split, n in (("train", 400), ("val", 200), ("test", 200)):
        assert np.bincount(shapes.labels(split, clean=True)).tolist() == [n // 4] * 4
    natural = _module(balance=False, n_train=3000)
    share_of_a = np.mean(natural.labels("train") == 0)
    assert abs(share_of_a - 1 / 9) < 0.025


def test_labels_follow_the_rule_before_noise(shapes):
    for split in ("train", "val", "test"):
        expected = shapes.generating_rule.labels(shapes.concepts(split))
        assert np.array_equal(shapes.labels(split, clean=True), expected)


def test_label_noise_on_train_and_val_only(shapes):
    for split, n in (("train", 400), ("val", 200)):
        flipped = shapes.labels(split) != shapes.labels(split, clean=True)
        assert flipped.sum() == round(0.1 * n)
    assert np.array_equal(shapes.labels("test"), shapes.labels("test", clean=True))


@pytest.mark.parametrize("test_mode", ["random", "correlated", "absent"])
def test_spurious_mark_statistics(test_mode):
    datamodule = _module(spurious={"class_name": "B", "train_fraction": 1.0, "test": test_mode},
                         n_train=800, n_test=800)
    assert datamodule.concept_names[-1] == MARK_CONCEPT
    for split in ("train", "val"):
        mark = datamodule.concepts(split)[:, -1].astype(bool)
        assert np.array_equal(mark, datamodule.labels(split, clean=True) == 1)
    mark = datamodule.concepts("test")[:, -1].astype(bool)
    is_b = datamodule.labels("test") == 1
    if test_mode == "absent":
        assert not mark.any()
    elif test_mode == "correlated":
        assert np.array_equal(mark, is_b)
    else:
        assert abs(mark[is_b].mean() - 0.5) < 0.1 and abs(mark[~is_b].mean() - 0.5) < 0.1
    for split in ("train", "val", "test"):
        corner = datamodule.display_images(split)[:, 1:4, 1:4]
        mark = datamodule.concepts(split)[:, -1].astype(bool)
        assert np.all(corner[mark] == 255) and not np.any(np.all(corner[~mark] == 255,
                                                                 axis=(1, 2, 3)))


def test_partial_train_fraction_mixes_in_random_marks():
    datamodule = _module(spurious={"class_name": "A", "train_fraction": 0.5}, n_train=2000)
    mark = datamodule.concepts("train")[:, -1].astype(bool)
    agree = np.mean(mark == (datamodule.labels("train", clean=True) == 0))
    assert abs(agree - 0.75) < 0.04  # half aligned, half a coin that agrees half the time


def test_objects_keep_off_the_marked_corner(shapes, crowded):
    for datamodule in (shapes, crowded):
        for split in ("train", "val", "test"):
            assert not datamodule.masks(split)[:, :6, :6].any()


def test_batches_carry_index_and_concepts(shapes):
    x, y, index, concepts = next(iter(shapes.train_dataloader()))
    assert x.shape == (64, 3, 32, 32) and x.dtype.is_floating_point
    assert y.shape == (64,) and concepts.shape == (64, 10)
    assert str(concepts.dtype) == "torch.float32"
    assert shapes.input_shape == (3, 32, 32) and shapes.num_classes == 4
    assert shapes.value_range == (0.0, 255.0)
    indices = [np.concatenate([batch[2].numpy() for batch in shapes.split_dataloader(split)])
               for split in ("train", "val", "test")]
    assert np.array_equal(np.concatenate(indices), np.arange(800))
    first = shapes.split_dataloader("val", batch_size=7)
    x, y, index, concepts = next(iter(first))
    assert np.array_equal(concepts.numpy(), shapes.concepts("val")[:7])
    assert np.array_equal(y.numpy(), shapes.labels("val")[:7])


def test_display_images_and_masks(shapes):
    images, masks = shapes.display_images("test"), shapes.masks("test")
    assert images.dtype == np.uint8 and images.shape == (200, 32, 32, 3)
    assert masks.dtype == bool and masks.shape == (200, 32, 32)


def test_normalization_from_train_or_given(shapes):
    train = shapes.display_images("train").astype(np.float64)
    assert shapes.normalization == pytest.approx((train.mean(), train.std()))
    x = shapes.splits["train"].tensors[0].numpy()
    assert abs(x.mean()) < 1e-3 and abs(x.std() - 1) < 1e-3
    given = _module(normalization=(100.0, 50.0))
    assert given.normalization == (100.0, 50.0)
    first = given.splits["test"].tensors[0][0].numpy()
    raw = given.display_images("test")[0].transpose(2, 0, 1)
    assert np.allclose(first, (raw - 100.0) / 50.0)


def test_full_size_generation_time(record_property):
    """The defaults (6,000 images) are drawn in about a second; recorded, not asserted."""
    start = time.perf_counter()
    datamodule = ShapesDataModule()
    datamodule.setup()
    record_property("shapes_setup_seconds", round(time.perf_counter() - start, 3))
    assert len(datamodule.splits["train"]) == 4000


@pytest.mark.parametrize("name, extra", [("shapes.yaml", ()),
                                         ("shapes_spurious.yaml", (MARK_CONCEPT,))])
def test_configs_build_the_benchmark(name, extra):
    config = load_config(CONFIGS / name)
    check_params(ShapesDataModule, config.data.params, "data.params")
    datamodule = ShapesDataModule(**{**config.data.params, **SMALL})
    assert datamodule.generating_rule.text() == DEFAULT_RULE
    assert datamodule.concept_names == (*CONCEPTS, *extra)

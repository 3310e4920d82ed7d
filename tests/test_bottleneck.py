"""The concept bottleneck model: its three training modes, predictions and interventions."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from hybrid.backbones import tiny_cnn
from hybrid.bottleneck import ConceptBottleneckModel, FeatureOutputs, intervene

CONCEPTS = ("left=bright", "top=bright")


def _toy(n=256, seed=0):
    """Images whose two concepts are which halves are bright; the class is left AND top."""
    rng = np.random.default_rng(seed)
    concepts = rng.integers(0, 2, size=(n, 2)).astype(np.float32)
    x = rng.normal(0, 0.3, size=(n, 1, 8, 8)).astype(np.float32)
    x[:, :, :, :4] += 2 * concepts[:, 0, None, None, None]
    x[:, :, :4, :] += 2 * concepts[:, 1, None, None, None]
    y = (concepts[:, 0] * concepts[:, 1]).astype(np.int64)
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y), torch.arange(n),
                         torch.from_numpy(concepts))


def _model(mode, **kwargs):
    torch.manual_seed(0)
    return ConceptBottleneckModel(tiny_cnn(1), num_classes=2, concept_names=CONCEPTS, mode=mode,
                                  optimizer_params={"lr": 0.03}, scheduler="none", **kwargs)


def _trainer(epochs):
    return pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", deterministic=True)


def _grads(model, batch, epoch=0):
    """Gradients of one training step's loss, by parameter group, with the epoch set."""
    model.zero_grad(set_to_none=True)
    model.trainer = _trainer(4)
    model.trainer.fit_loop.epoch_progress.current.completed = epoch
    loss, *_ = model._losses(batch, train=True)
    loss.backward()
    return {name: [p.grad for p in getattr(model, name).parameters()]
            for name in ("backbone", "concept_layer", "head")}


def test_modes_route_gradients_as_koh_et_al():
    batch = next(iter(DataLoader(_toy(32), batch_size=32)))
    joint = _grads(_model("joint"), batch)
    assert all(g is not None and g.abs().sum() > 0 for g in joint["backbone"])
    # independent: the head learns from the true concepts, so the task loss never reaches the
    # concept predictor: its gradient is the concept loss's alone.
    model = _model("independent")
    independent = _grads(model, batch)
    model.zero_grad(set_to_none=True)
    torch.nn.functional.binary_cross_entropy_with_logits(model.concept_logits(batch[0]),
                                                         batch[3]).backward()
    for got, want in zip(independent["concept_layer"], model.concept_layer.parameters()):
        torch.testing.assert_close(got, want.grad)
    # sequential: concepts first (no head gradient), then the head alone.
    first = _grads(_model("sequential", concept_epochs=2), batch, epoch=0)
    assert all(g is None for g in first["head"])
    second = _grads(_model("sequential", concept_epochs=2), batch, epoch=2)
    assert all(g is None for g in second["backbone"] + second["concept_layer"])
    assert all(g is not None for g in second["head"])


@pytest.mark.parametrize("mode", ["independent", "sequential", "joint"])
def test_each_mode_learns_the_concepts_and_the_task(mode):
    pl.seed_everything(0, verbose=False)
    model = _model(mode, concept_epochs=4)
    train, val = _toy(512, seed=0), _toy(256, seed=1)
    _trainer(8).fit(model, DataLoader(train, batch_size=64, shuffle=True),
                    DataLoader(val, batch_size=256))
    model.eval()
    (out,) = _trainer(1).predict(model, DataLoader(val, batch_size=256))
    concepts_true = val.tensors[3]
    assert set(out) == {"embedding", "concepts", "proba", "y", "index", "true_concepts"}
    assert ((out["concepts"] > 0.5).float() == concepts_true).float().mean() > 0.95
    assert (out["proba"].argmax(1) == val.tensors[1]).float().mean() > 0.9


def test_interventions_replace_concepts_before_the_head():
    model = _model("joint").eval()
    with torch.no_grad():  # a head that reads "class 1 iff both concepts"
        model.head.weight.copy_(torch.tensor([[0.0, 0.0], [4.0, 4.0]]))
        model.head.bias.copy_(torch.tensor([0.0, -6.0]))
    loader = DataLoader(_toy(64), batch_size=16)
    both_on = intervene(model, loader, {0: 1.0, 1: 1.0})
    assert (both_on["after"] == 1).all()
    assert np.all(both_on["concepts_after"] == 1.0)
    one_off = intervene(model, loader, {0: 0.0})
    assert (one_off["after"] == 0).all()
    # the true concepts make the head exactly the generating rule
    truth = intervene(model, loader, {0: None, 1: None})
    assert np.array_equal(truth["after"], truth["y"])
    np.testing.assert_array_equal(truth["before"], intervene(model, loader, {})["after"])


def test_true_value_interventions_need_concept_labels():
    model = _model("joint").eval()
    x, y, index, _ = _toy(8).tensors
    with pytest.raises(ValueError, match="no concept labels"):
        intervene(model, DataLoader(TensorDataset(x, y, index), batch_size=8), {0: None})


def test_feature_outputs_are_the_extracted_columns():
    model = _model("joint").eval()
    x = _toy(4).tensors[0]
    with torch.no_grad():
        embedding = model.backbone(x)
        concepts = torch.sigmoid(model.concept_layer(embedding))
        torch.testing.assert_close(FeatureOutputs(model, "embedding")(x), embedding)
        torch.testing.assert_close(FeatureOutputs(model, "concepts")(x), concepts)
        torch.testing.assert_close(FeatureOutputs(model, "concepts_and_embedding")(x),
                                   torch.cat([concepts, embedding], 1))
    assert FeatureOutputs(model).cam_layer is model.backbone.cam_layer

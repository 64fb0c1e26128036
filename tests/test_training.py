"""The training loop and its callbacks, checked against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from darts import Architecture, SearchNetwork
from darts.data import DictTargetDataset
from darts.assemble import count_parameters, multiply_adds
from darts.tasks import Target
from darts.training import (ArchitectureStep, Callback, EarlyStopping, GradientClipping, LRSchedule,
                            MetricAccumulator, NonFiniteLossError, TaskLoss, TerminateOnNonFinite, Trainer,
                            make_optimizer, make_scheduler)
from darts.training.trainer import HOOKS
from darts.recipes.examples import split_dataset

LABEL = (Target("label", classes=3),)


def linear_problem(samples: int = 64, features: int = 5):
    inputs = torch.randn(samples, features)
    labels = (inputs[:, 0] > 0).long() + (inputs[:, 1] > 0).long()
    return nn.Linear(features, 3), TensorDataset(inputs, labels)


class Recorder(Callback):
    def __init__(self):
        self.calls, self.lrs = [], []


def _recording(hook):
    def record(self, trainer):
        self.calls.append(hook)
        if hook == "after_step":
            self.lrs.append((trainer.epoch, trainer.optimizer.param_groups[0]["lr"]))
    return record


for _hook in HOOKS:  # every hook the Trainer calls, overriding Callback's documented no-ops
    setattr(Recorder, _hook, _recording(_hook))


def test_hooks_run_in_the_documented_order():
    model, data = linear_problem(8)
    recorder = Recorder()
    Trainer(model, torch.optim.SGD(model.parameters(), 0.1), TaskLoss(LABEL, False), data, 4, 2,
            callbacks=[recorder]).fit()
    batch = ["before_batch", "after_loss", "after_backward", "after_step", "after_batch"]
    epoch = ["before_epoch", *batch, *batch, "after_epoch"]
    assert recorder.calls == ["before_fit", *epoch, *epoch, "after_fit"]


@pytest.mark.slow
def test_a_batch_keeps_no_graph_once_its_backward_pass_is_done():
    """The next batch's passes (the alpha step first) should not find the spent graph's nodes in their way."""
    import gc
    import weakref

    class RecordingLoss(TaskLoss):
        def __call__(self, outputs, targets):
            loss = super().__call__(outputs, targets)
            spent.extend([weakref.ref(outputs), weakref.ref(loss)])
            return loss

    class NoSpentGraph(Callback):
        def before_batch(self, trainer):
            gc.collect()
            checked.append(all(ref() is None for ref in spent))

    spent, checked = [], []
    model, data = linear_problem(16)
    Trainer(model, torch.optim.SGD(model.parameters(), 0.1), RecordingLoss(LABEL, False), data, 4, 2,
            callbacks=[NoSpentGraph()]).fit()
    gc.collect()
    assert len(checked) == 8 and all(checked) and all(ref() is None for ref in spent)


def test_the_gradients_are_dropped_after_the_step_that_used_them():
    """The next batch's alpha step should not find the last weight step's gradients scattered in its way;
    ``after_step`` callbacks still see them."""

    class Gradients(Callback):
        def after_step(self, trainer):
            seen.append(("after_step", all(p.grad is not None for p in trainer.model.parameters())))

        def before_batch(self, trainer):
            seen.append(("before_batch", any(p.grad is not None for p in trainer.model.parameters())))

    seen = []
    model, data = linear_problem(16)
    Trainer(model, torch.optim.SGD(model.parameters(), 0.1), TaskLoss(LABEL, False), data, 4, 1,
            callbacks=[Gradients()]).fit()
    assert seen == [("before_batch", False), ("after_step", True)] * 4


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_the_weight_optimiser_takes_its_first_step_as_computed_by_hand(name):
    """SGD: w - lr (g + wd w) (its momentum buffer starts as that gradient). AdamW: the bias-corrected first
    moment over the root of the second is g / |g|, and the decay is decoupled: w (1 - lr wd) - lr g / |g|."""
    from darts.config import TrainConfig

    loop = TrainConfig(optimizer=name, lr=0.1, weight_decay=0.01, momentum=0.9)
    w = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    optimizer = make_optimizer([w], loop)
    w.grad = torch.tensor([0.3, -0.4, 2.0])
    optimizer.step()
    w0, g = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.3, -0.4, 2.0])
    if name == "sgd":
        expected = w0 - 0.1 * (g + 0.01 * w0)
    else:
        expected = w0 * (1 - 0.1 * 0.01) - 0.1 * g / (g.abs() + 1e-8)
    assert torch.allclose(w.detach(), expected, atol=1e-6)


def test_cosine_schedule_steps_per_epoch_never_per_batch():
    model, data = linear_problem(64)
    optimizer = torch.optim.SGD(model.parameters(), 0.1)
    recorder, epochs = Recorder(), 5
    Trainer(model, optimizer, TaskLoss(LABEL, False), data, 8, epochs,
            callbacks=[recorder, LRSchedule(make_scheduler(optimizer, "cosine", epochs, lr_min=0.001))]).fit()
    assert len(recorder.lrs) == epochs * 8
    for epoch in range(epochs):
        expected = 0.001 + 0.5 * (0.1 - 0.001) * (1 + math.cos(math.pi * epoch / epochs))
        rates = [lr for e, lr in recorder.lrs if e == epoch]
        assert len(rates) == 8 and rates == pytest.approx([expected] * 8), epoch


def test_gradient_clipping_bounds_the_weight_gradient_norm():
    model, data = linear_problem(16)
    norms = []

    class Norm(Callback):
        order = 1  # after the clipping

        def after_backward(self, trainer):
            norms.append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in trainer.model.parameters()))))

    with torch.no_grad():
        model.weight.mul_(100)
    Trainer(model, torch.optim.SGD(model.parameters(), 0.0), TaskLoss(LABEL, False), data, 16, 1,
            callbacks=[GradientClipping(0.5), Norm()]).fit()
    assert norms and max(norms) <= 0.5 + 1e-6


def test_the_alpha_step_draws_only_from_the_held_out_split():
    torch.manual_seed(0)
    inputs = torch.arange(40, dtype=torch.float32)[:, None, None].expand(40, 2, 6).clone()  # input encodes index
    data = TensorDataset(inputs, torch.randint(0, 3, (40,)))
    weight_split, held_out = split_dataset(data, 0.5, seed=3)
    held_out_ids = {int(data[i][0][0, 0]) for i in held_out.indices}
    network = SearchNetwork("conv1d", 2, 4, 3, layers=1, nodes=1)
    optimizer = torch.optim.SGD(network.parameters(), 0.01)
    architecture = Architecture(network, optimizer, F.cross_entropy, order="first")
    seen = []
    original = architecture.step

    def spy(train_batch, val_batch):
        seen.append(({int(v) for v in train_batch[0][:, 0, 0]}, {int(v) for v in val_batch[0][:, 0, 0]}))
        return original(train_batch, val_batch)

    architecture.step = spy
    loss = TaskLoss(LABEL, False)
    Trainer(network, optimizer, loss, weight_split, 5, 2, callbacks=[ArchitectureStep(architecture, held_out, 3)]).fit()
    assert len(seen) == 8  # one alpha step per weight step
    assert set(held_out.indices).isdisjoint(weight_split.indices)
    for train_ids, val_ids in seen:
        assert val_ids <= held_out_ids and not val_ids & train_ids


def test_multi_task_loss_and_metrics_match_a_hand_computation():
    targets = (Target("kind", classes=2), Target("size", "regression"))
    loss = TaskLoss(targets, multi_task=True, weights={"kind": 3.0, "size": 1.0})
    outputs = {"kind": torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), "size": torch.tensor([1.0, 2.0, 4.0])}
    labels = {"kind": torch.tensor([0, 0, 0]), "size": torch.tensor([1.0, 1.0, 2.0])}
    ce = -sum(math.log(math.exp(a) / (math.exp(a) + math.exp(b)))
              for (a, b) in [(2.0, 0.0), (0.0, 1.0), (1.0, 0.0)]) / 3
    mse = (0 + 1 + 4) / 3
    assert float(loss(outputs, labels)) == pytest.approx((3 * ce + mse) / 4)
    metrics = MetricAccumulator(loss)
    metrics.update(outputs, labels)
    result = metrics.compute("val_")
    assert result["val_kind_accuracy"] == pytest.approx(2 / 3)
    assert result["val_kind_macro_f1"] == pytest.approx((0.8 + 0.0) / 2)  # class 0: p=1, r=2/3; class 1: 0
    assert result["val_size_mse"] == pytest.approx(mse)
    mean = 4 / 3
    assert result["val_size_r2"] == pytest.approx(1 - 5 / sum((y - mean) ** 2 for y in (1, 1, 2)))
    metrics.reset()  # a new epoch starts from nothing
    assert metrics.compute() == {}


def test_the_f1_and_r2_scores_are_scikit_learns():
    import numpy as np
    from sklearn.metrics import f1_score, r2_score

    from darts.training.objective import f1_scores, r2

    generator = np.random.default_rng(0)
    cases = [(np.array([0, 0, 0]), np.array([0, 1, 0])), (np.array([2, 2]), np.array([5, 5])),  # a class never true
             (np.array([1]), np.array([1]))]
    for size, classes in [(50, 2), (200, 7), (30, 12), (5, 3)]:
        labels = generator.integers(0, classes, size)
        cases.append((labels, np.where(generator.random(size) < 0.6, labels, generator.integers(0, classes, size))))
    for labels, predictions in cases:
        assert f1_scores(labels, predictions) == pytest.approx(
            (f1_score(labels, predictions, average="micro", zero_division=0),
             f1_score(labels, predictions, average="macro", zero_division=0)), abs=1e-12), (labels, predictions)
    for shape in [(40,), (40, 1), (40, 3)]:
        labels = generator.normal(size=shape).astype(np.float32)
        predictions = (labels + generator.normal(scale=0.7, size=shape)).astype(np.float32)
        assert r2(labels, predictions) == pytest.approx(r2_score(labels, predictions), abs=1e-6)
    constant = np.ones(4, dtype=np.float32)
    for predictions in (constant, constant + 1):  # SS_tot = 0: 1 when exact, else 0, as scikit-learn
        assert r2(constant, predictions) == r2_score(constant, predictions)


def test_single_and_multi_task_targets_train():
    inputs = torch.randn(32, 4)
    for data, multi in ((TensorDataset(inputs, (inputs[:, 0] > 0).long()), False),
                        (DictTargetDataset(inputs, {"a": (inputs[:, 0] > 0).long(), "b": inputs[:, 1]}), True)):
        targets = (Target("a", classes=2), Target("b", "regression")) if multi else (Target("a", classes=2),)
        from darts.assemble import head_factory
        from darts.tasks import TaskData

        head = head_factory(TaskData(data, data, targets, multi, in_channels=4))(4)
        history = Trainer(head, torch.optim.SGD(head.parameters(), 0.1), TaskLoss(targets, multi), data, 8, 3,
                          valid_data=data, monitor="val_loss").fit()
        assert history[-1]["val_loss"] < history[0]["val_loss"]
        assert ("val_a_accuracy" in history[0]) == multi and "val_accuracy" in history[0]


def test_task_weights_must_name_targets():
    with pytest.raises(ValueError, match="task_weights names"):
        TaskLoss((Target("a", classes=2), Target("b", classes=2)), True, {"c": 1.0})


def test_early_stopping_after_patience_epochs_without_improvement():
    model, data = linear_problem(16)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.0), TaskLoss(LABEL, False), data, 8, 20,
                      valid_data=data, callbacks=[EarlyStopping(3)], monitor="val_loss")
    trainer.fit()
    assert trainer.epoch == 4 and trainer.best["epoch"] == 1  # nothing learns at lr 0


def test_a_nan_loss_stops_with_the_epoch_and_step():
    model, data = linear_problem(32)
    data.tensors[0][20] = float("nan")
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.1), TaskLoss(LABEL, False), data, 4, 3,
                      callbacks=[TerminateOnNonFinite()])
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss \(nan\) at epoch 1, step \d+ of 8"):
        trainer.fit()


def test_an_unknown_monitor_lists_the_metrics():
    model, data = linear_problem(8)
    with pytest.raises(ValueError, match="monitor 'val_acc' is not a metric of this run; known: train_loss"):
        Trainer(model, torch.optim.SGD(model.parameters(), 0.1), TaskLoss(LABEL, False), data, 4, 1,
                monitor="val_acc").fit()


def test_multiply_adds_and_parameters_match_hand_counts():
    conv = nn.Sequential(nn.Conv1d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(40, 5))
    assert multiply_adds(conv, torch.randn(1, 3, 10)) == 3 * 4 * 3 * 10 + 40 * 5
    model = nn.Sequential()
    model.add_module("body", nn.Linear(10, 5))
    model.add_module("auxiliary_head", nn.Linear(5, 2))
    assert count_parameters(model) == {"model": 55, "auxiliary": 12, "total": 67}


def test_batch_statistics_never_see_a_batch_of_one_example():
    _, data = linear_problem(7)
    model = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3))
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.1), TaskLoss(LABEL, False), data, 3, 1,
                      batch_norm_statistics="batch")
    metrics = trainer.evaluate(data, "val_")  # 7 = 3 + 3 + 1 would fail; the batches grow to 4 + 3
    assert set(metrics) >= {"val_loss", "val_accuracy"}
    with pytest.raises(ValueError, match="more than 1 value per channel"):  # what the plain loader would meet
        with torch.no_grad():
            model.train()(data.tensors[0][:1])


def test_the_majority_baseline_takes_its_class_from_training_never_from_the_test_labels():
    from torch.utils.data import Subset, TensorDataset

    from darts.data import DictTargetDataset
    from darts.data.datasets import split_labels
    from darts.tasks import Target, TaskData

    x = torch.zeros(6, 2)
    train = Subset(TensorDataset(x, torch.tensor([0, 0, 1, 9, 9, 9])), [0, 1, 2])  # class 0 twice, 1 once
    test = TensorDataset(x[:3], torch.tensor([1, 1, 0]))  # the test split's own majority would be 1 (2/3)
    data = TaskData(train, test, (Target("label", classes=2),), in_channels=2)
    assert data.recipe().baseline() == {"majority_accuracy": pytest.approx(1 / 3)}
    both = DictTargetDataset(x[:3], {"a": torch.tensor([2, 2, 0]), "b": torch.tensor([1.5, 0.5, 0.0])})
    assert split_labels(both, ["a", "b"])["a"].tolist() == [2, 2, 0]

    class Items(torch.utils.data.Dataset):  # a dataset that keeps no targets apart: read item by item
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return x[i], torch.tensor(i)

    assert split_labels(Items(), ["label"])["label"].tolist() == [0, 1]

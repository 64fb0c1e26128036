"""The bilevel alpha update against independent computations: exact autograd, torch's own SGD step."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call

from darts import Architecture
from tests.conftest import FAMILIES, PC_FAMILIES, cross_entropy, make_problem


def sgd(network, **options) -> torch.optim.SGD:
    return torch.optim.SGD(network.parameters(), **{"lr": 0.05, "momentum": 0.9, "weight_decay": 3e-4, **options})


def warm_momentum(problem, optimizer) -> None:
    """One real weight step, so that the optimiser has momentum buffers (as mid-search)."""
    optimizer.zero_grad()
    cross_entropy(problem.network(problem.train[0]), problem.train[1]).backward()
    optimizer.step()


def relative_error(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    a, b = torch.cat([t.flatten() for t in a]), torch.cat([t.flatten() for t in b])
    return float((a - b).norm() / b.norm())


def seeds_of_next_step(seed: int) -> list[int]:
    """The per-batch random seeds an Architecture draws after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return torch.randint(0, 2**62, (2,)).tolist()


def loss_at(network, weights: dict, batch, seed: int) -> torch.Tensor:
    """L(weights) on ``batch`` with the random stream ``seed``, on copies of the buffers (independent path)."""
    state = {**weights, **{n: b.clone() for n, b in network.named_buffers()}}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = functional_call(network, state, (batch[0],))
    return cross_entropy(out, batch[1])


def unrolled_hypergradient(problem, optimizer) -> list[torch.Tensor]:
    """d/dalpha L_val(w'(alpha), alpha) by autograd through an explicit SGD step (momentum, weight decay)."""
    network = problem.network
    group = optimizer.param_groups[0]
    lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
    names, weights = zip(*network.named_parameters())
    seed_train, seed_val = seeds_of_next_step(1234)
    train_loss = loss_at(network, dict(zip(names, weights)), problem.train, seed_train)
    grads = torch.autograd.grad(train_loss, weights, create_graph=True, allow_unused=True)
    virtual = {}
    for name, w, g in zip(names, weights, grads):
        g = torch.zeros_like(w) if g is None else g
        buffer = optimizer.state[w]["momentum_buffer"]
        virtual[name] = w.detach() - lr * (momentum * buffer + g + decay * w.detach())
    val_loss = loss_at(network, virtual, problem.val, seed_val)
    return list(torch.autograd.grad(val_loss, network.arch_parameters()))


@pytest.mark.parametrize("family", FAMILIES + PC_FAMILIES)
@pytest.mark.slow
def test_second_order_matches_autograd_through_the_unrolled_step(family, record_property):
    problem = make_problem(family)
    optimizer = sgd(problem.network)
    warm_momentum(problem, optimizer)
    oracle = unrolled_hypergradient(problem, optimizer)
    results = {}
    for order, radius in (("exact", 0.01), ("second", 1e-6), ("second", 0.01)):
        architecture = Architecture(problem.network, optimizer, cross_entropy, order=order, radius=radius)
        torch.manual_seed(1234)
        results[order, radius] = architecture.hypergradient(problem.train, problem.val)
    exact, fd_small, fd_paper = results["exact", 0.01], results["second", 1e-6], results["second", 0.01]
    assert torch.cat([m.flatten() for m in exact.mixed]).norm() > 0
    assert relative_error(exact.total, oracle) < 1e-10
    error_small = relative_error(fd_small.mixed, exact.mixed)
    error_paper = relative_error(fd_paper.mixed, exact.mixed)
    record_property("mixed_term_relative_error_radius_1e-6", error_small)
    record_property("mixed_term_relative_error_radius_0.01", error_paper)
    print(f"{family}: finite difference vs exact mixed term, relative error {error_small:.2e} at radius 1e-6, "
          f"{error_paper:.2e} at radius 0.01")
    assert error_small < 1e-6
    assert relative_error(fd_small.total, oracle) < 1e-6


@pytest.mark.parametrize("family", FAMILIES + PC_FAMILIES)
@pytest.mark.slow
def test_the_forward_difference_of_the_fast_mode_approaches_the_exact_product(family):
    problem = make_problem(family)
    optimizer = sgd(problem.network)
    warm_momentum(problem, optimizer)
    torch.manual_seed(1234)  # the same dropout masks in every call
    exact = Architecture(problem.network, optimizer, cross_entropy, order="exact").hypergradient(
        problem.train, problem.val)
    errors = {}
    for radius in (1e-3, 1e-6):
        torch.manual_seed(1234)
        fast = Architecture(problem.network, optimizer, cross_entropy, radius=radius, difference="forward")
        errors[radius] = relative_error(fast.hypergradient(problem.train, problem.val).mixed, exact.mixed)
    print(f"{family}: forward difference vs exact mixed term, relative error {errors[1e-6]:.2e} at radius 1e-6, "
          f"{errors[1e-3]:.2e} at radius 1e-3")
    assert errors[1e-6] < 1e-4 and errors[1e-6] < errors[1e-3]  # first-order accurate in the radius
    with pytest.raises(ValueError, match="difference must be 'central' or 'forward'"):
        Architecture(problem.network, optimizer, cross_entropy, difference="backward")


@pytest.mark.parametrize("family", FAMILIES)
def test_first_order_is_the_plain_validation_gradient(family):
    problem = make_problem(family)
    optimizer = sgd(problem.network)
    architecture = Architecture(problem.network, optimizer, cross_entropy, order="first")
    _, seed_val = seeds_of_next_step(7)
    torch.manual_seed(7)
    result = architecture.hypergradient(problem.train, problem.val)
    independent = copy.deepcopy(problem.network)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_val)
        cross_entropy(independent(problem.val[0]), problem.val[1]).backward()
    expected = [alpha.grad for alpha in independent.arch_parameters()]
    assert relative_error(result.total, expected) < 1e-12


@pytest.mark.parametrize("order", ["first", "second", "exact"])
@pytest.mark.parametrize("family", FAMILIES)
def test_alpha_step_changes_only_the_alphas(family, order):
    problem = make_problem(family, dtype=torch.float32)
    optimizer = sgd(problem.network)
    warm_momentum(problem, optimizer)
    network = problem.network
    alpha_names = {f"alphas.{name}" for name in network.alphas}
    before = {k: v.clone() for k, v in network.state_dict().items()}
    momentum = {id(p): s["momentum_buffer"].clone() for p, s in optimizer.state.items()}
    Architecture(network, optimizer, cross_entropy, order=order).step(problem.train, problem.val)
    after = network.state_dict()
    for name, value in before.items():
        if name in alpha_names:
            assert not torch.equal(value, after[name]), f"{name} did not move"
        else:
            assert torch.equal(value, after[name]), f"{name} changed during an alpha step"
    for p, s in optimizer.state.items():
        assert torch.equal(s["momentum_buffer"], momentum[id(p)])


@pytest.mark.parametrize("options", [
    {"momentum": 0.0},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.3},
    {"momentum": 0.9, "nesterov": True},
], ids=["plain", "momentum", "dampening", "nesterov"])
@pytest.mark.parametrize("warm", [False, True], ids=["first-step", "mid-search"])
def test_virtual_step_is_the_step_sgd_would_take(options, warm):
    problem = make_problem("conv1d")
    optimizer = sgd(problem.network, **options)
    if warm:
        warm_momentum(problem, optimizer)
    architecture = Architecture(problem.network, optimizer, cross_entropy)
    weights = list(problem.network.parameters())
    loss = cross_entropy(problem.network(problem.train[0]), problem.train[1])
    grads = torch.autograd.grad(loss, weights)
    virtual, _ = architecture._virtual_step(weights, grads)
    # what torch's SGD really does with these gradients, on a copy
    network = copy.deepcopy(problem.network)
    real = torch.optim.SGD(network.parameters(), **{"lr": 0.05, "weight_decay": 3e-4, **options})
    real.load_state_dict(optimizer.state_dict())
    for p, g in zip(network.parameters(), grads):
        p.grad = g.clone()
    real.step()
    for v, p in zip(virtual, network.parameters()):
        torch.testing.assert_close(v, p, rtol=0, atol=1e-14)


@pytest.mark.parametrize("max_norm", [1e-3, 1e3], ids=["clipping", "not-clipping"])
def test_the_virtual_step_clips_like_the_weight_step(max_norm):
    problem = make_problem("conv1d")
    optimizer = sgd(problem.network, momentum=0.9)
    warm_momentum(problem, optimizer)
    architecture = Architecture(problem.network, optimizer, cross_entropy, grad_clip=max_norm)
    weights = list(problem.network.parameters())
    grads = torch.autograd.grad(cross_entropy(problem.network(problem.train[0]), problem.train[1]), weights)
    virtual, scales = architecture._virtual_step(weights, grads)
    network = copy.deepcopy(problem.network)  # the real step: clip_grad_norm_, then SGD
    real = torch.optim.SGD(network.parameters(), lr=0.05, weight_decay=3e-4, momentum=0.9)
    real.load_state_dict(optimizer.state_dict())
    for p, g in zip(network.parameters(), grads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(network.parameters(), max_norm)
    real.step()
    for v, p in zip(virtual, network.parameters()):
        torch.testing.assert_close(v, p, rtol=0, atol=1e-12)
    norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
    assert scales[0] == pytest.approx(0.05 * min(1.0, max_norm / (norm + 1e-6)))


def test_optimisers_never_share_parameters():
    problem = make_problem("conv1d")
    network = problem.network
    alpha_ids = {id(a) for a in network.arch_parameters()}
    assert alpha_ids and not alpha_ids & {id(p) for p in network.parameters()}
    assert not alpha_ids & {id(p) for _, p in network.named_parameters()}
    assert {f"alphas.{k}" for k in network.alphas} <= set(network.state_dict())
    leaky = torch.optim.SGD([*network.parameters(), *network.arch_parameters()], lr=0.1)
    with pytest.raises(ValueError, match="weight optimiser holds architecture parameters"):
        Architecture(network, leaky, cross_entropy)
    with pytest.raises(ValueError, match="alpha optimiser holds network weights"):
        Architecture(network, sgd(network), cross_entropy,
                     optimizer=torch.optim.Adam([*network.arch_parameters(), next(network.parameters())]))


def test_the_virtual_step_follows_an_optimizer_state_loaded_later(problem):
    """A resumed run loads the weight optimiser's state, which replaces its param groups (and their lr)."""
    network = problem.network
    weights = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9)
    architecture = Architecture(network, weights, cross_entropy, order="exact")
    state = weights.state_dict()
    state["param_groups"][0]["lr"] = 0.02
    weights.load_state_dict(state)
    fresh = Architecture(network, torch.optim.SGD(network.parameters(), lr=0.02, momentum=0.9), cross_entropy,
                         order="exact")
    torch.manual_seed(1)  # the same dropout masks in both
    got = architecture.hypergradient(problem.train, problem.val).total
    torch.manual_seed(1)
    expected = fresh.hypergradient(problem.train, problem.val).total
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("reuse", [True, False])
def test_fast_mode_weight_step_reuses_the_virtual_steps_gradient(reuse):
    from torch.utils.data import TensorDataset

    from darts.tasks import Target
    from darts.training import ArchitectureStep, TaskLoss, Trainer

    problem = make_problem("conv1d")
    network = problem.network
    before = copy.deepcopy(network)  # the weights and alphas the virtual step saw
    optimizer = sgd(network)
    architecture = Architecture(network, optimizer, cross_entropy, difference="forward", reuse_gradient=reuse)
    loss = TaskLoss((Target("label", classes=3),), multi_task=False)
    x, y = problem.train
    trainer = Trainer(network, optimizer, loss, TensorDataset(x, y), len(x), 1,
                      callbacks=[ArchitectureStep(architecture, TensorDataset(*problem.val), len(x))])
    trainer.fit()
    expected_optimizer = sgd(before)
    cross_entropy(before(x), y).backward()  # the gradient at w with the alphas before the alpha update
    expected_optimizer.step()
    same = all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(network.parameters(), before.parameters()))
    assert same == reuse  # without reuse the weight step sees the updated alphas
    assert trainer.history[0]["train_loss"] > 0


@pytest.mark.parametrize("order, options", [("first", {}), ("second", {}), ("second", {"difference": "forward"}),
                                            ("second", {"difference": "forward", "reuse_gradient": True}),
                                            ("exact", {})])
@pytest.mark.slow
def test_no_pass_keeps_its_graph_after_its_backward(order, options):
    """A spent graph holds no tensors but its many small nodes would fragment the memory the next pass needs:
    when a pass starts, the losses and network outputs of the earlier passes are gone."""
    import gc
    import weakref

    problem = make_problem("conv2d", dtype=torch.float32)
    spent, alive_at_pass = [], []

    def recording_loss(output, target):
        gc.collect()
        alive_at_pass.append(sum(ref() is not None for ref in spent))
        loss = cross_entropy(output, target)
        spent.extend([weakref.ref(output), weakref.ref(loss)])
        return loss

    architecture = Architecture(problem.network, sgd(problem.network), recording_loss, order=order, **options)
    result = architecture.step(problem.train, problem.val)
    gc.collect()
    assert alive_at_pass == [0] * {"first": 1, "exact": 2}.get(order, 3 if options else 4)
    assert all(ref() is None for ref in spent)
    assert result["val_output"].grad_fn is None
    if options.get("reuse_gradient"):
        assert all(t.grad_fn is None for t in architecture.train_gradient[2:])


@pytest.mark.parametrize("difference", ["central", "forward"])
def test_the_weights_of_the_later_passes_lie_in_one_allocation(difference):
    """Weight-shaped tensors kept from one pass to the next, allocated one by one, would stay scattered over
    the memory the passes free (darts.packing): the virtual and perturbed weights, and the buffers' copies
    of every pass, are views of one allocation per dtype; the first pass runs on the weights themselves."""
    problem = make_problem("conv2d", dtype=torch.float32)
    network = problem.network
    storages = []

    def record(module, inputs):  # the stand-ins are in place during the forward pass
        weights = {p.untyped_storage().data_ptr() for p in module.parameters()}
        buffers = {(b.dtype, b.untyped_storage().data_ptr()) for b in module.buffers()}
        storages.append((len(weights), len({dtype for dtype, _ in buffers}) == len(buffers)))

    weights = list(network.parameters())
    assert len(weights) > 10 and len({b.dtype for b in network.buffers()}) == 2  # float and int64 counters
    network.register_forward_pre_hook(record)
    Architecture(network, sgd(network), cross_entropy, difference=difference).step(problem.train, problem.val)
    passes = 3 if difference == "forward" else 4
    assert storages == [(len(weights), True)] + [(1, True)] * (passes - 1)


@pytest.mark.parametrize("family", ["conv1d", "conv2d"])
def test_alpha_only_passes_compute_no_weight_gradient(family):
    """The first-order pass and the finite-difference passes need grad_alpha only: no convolution in them
    computes its weight gradient. Second order computes weight gradients in two passes, the virtual step
    and the validation pass at w', so as many as two plain backward passes."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class WeightGradients(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.convolution_backward.default and args[-1][1]:
                WeightGradients.count += 1
            return func(*args, **(kwargs or {}))

    def counted(run) -> int:
        WeightGradients.count = 0
        with WeightGradients():
            run()
        return WeightGradients.count

    problem = make_problem(family, dtype=torch.float32)
    network = problem.network
    plain = counted(lambda: cross_entropy(network(problem.train[0]), problem.train[1]).backward())
    assert plain > 0
    for order, options, passes in [("first", {}, 0), ("second", {}, 2), ("second", {"difference": "forward"}, 2)]:
        architecture = Architecture(network, sgd(network), cross_entropy, order=order, **options)
        assert counted(lambda: architecture.hypergradient(problem.train, problem.val)) == passes * plain, order

"""Tests of trainers/optimal_transport.py against POT and independent computations (float64 unless noted)."""
import itertools
import linecache
import warnings

import numpy as np
import ot
import pytest
import torch

from trainers import optimal_transport as otm
from trainers.optimal_transport import SinkhornCapWarning, exact_ot, hungarian, ot_value, sinkhorn


def _simplex(gen, *shape):
    x = torch.rand(*shape, generator=gen, dtype=torch.float64) + 0.1
    return x / x.sum(-1, keepdim=True)


def _pot_sinkhorn(a, b, C, eps, stop=1e-15):
    """POT's plan, by default run to (near) machine precision."""
    return torch.from_numpy(ot.sinkhorn(a.numpy(), b.numpy(), C.numpy(), eps, stopThr=stop, numItermax=100000))


@pytest.fixture(params=["numpy", "torch", "torch-chunked"])
def solver_path(request, monkeypatch):
    """Run a test on each code path: NumPy for tiny batches (the default at these sizes), torch in one
    chunk (problem-minor layout for m * n < 64, problem-major otherwise), torch in many small chunks."""
    if request.param != "numpy":
        monkeypatch.setattr(otm, "SMALL_NUMPY_NUMEL", 0)
    if request.param == "torch-chunked":
        monkeypatch.setattr(otm, "CPU_CHUNK_BYTES", 1500)
    return request.param


# ------------------------------------------------------------------------------------------------
# sinkhorn, stop rule "tol", against POT
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["kernel", "log", "auto"])
@pytest.mark.parametrize("m,n", [(5, 4), (20, 15)])  # problem-minor and problem-major layouts
def test_sinkhorn_matches_pot(method, m, n, solver_path):
    gen = torch.Generator().manual_seed(m * n)
    C = torch.rand(2, 3, m, n, generator=gen, dtype=torch.float64) * 2
    a, b = _simplex(gen, 2, 3, m), _simplex(gen, 2, 3, n)
    eps = 0.1
    plan, log = sinkhorn(C, a, b, eps=eps, tol=1e-14, max_iter=20000, method=method, log=True)
    assert plan.shape == C.shape and plan.dtype == torch.float64
    assert bool(log["converged"].all())
    for i, j in itertools.product(range(2), range(3)):
        ref = _pot_sinkhorn(a[i, j], b[i, j], C[i, j], eps)
        assert (plan[i, j] - ref).abs().max() < 1e-8
    assert bool(log["log_domain"].all()) == (method == "log")


def test_sinkhorn_uniform_default_and_broadcast_marginal():
    gen = torch.Generator().manual_seed(1)
    C = torch.rand(4, 6, 7, generator=gen, dtype=torch.float64)
    b = _simplex(gen, 7)  # one marginal shared by the whole batch
    plan = sinkhorn(C, None, b, eps=0.05, tol=1e-14, max_iter=20000)
    for k in range(4):
        ref = _pot_sinkhorn(torch.full((6,), 1 / 6, dtype=torch.float64), b, C[k], 0.05)
        assert (plan[k] - ref).abs().max() < 1e-8


@pytest.mark.parametrize("method", ["kernel", "log", "auto"])
@pytest.mark.parametrize("m,n", [(6, 5), (24, 12)])
@pytest.mark.parametrize("pad_values", [(123.0, -7.0), (float("nan"), float("inf"))])
def test_sinkhorn_padded_equals_unpadded_subproblem(method, m, n, pad_values, solver_path):
    gen = torch.Generator().manual_seed(7 + m)
    P = 5
    C = torch.rand(P, m, n, generator=gen, dtype=torch.float64) * 3
    a, b = _simplex(gen, P, m), _simplex(gen, P, n)
    rows = [m, m - 2, m // 2, m, 3]  # valid sizes per problem; the rest is padding
    cols = [n, 2, n - 1, n // 2, n]
    for p in range(P):
        a[p, rows[p]:] = 0
        b[p, cols[p]:] = 0
        C[p, rows[p]:, :] = pad_values[0]  # padding values must not matter
        C[p, :, cols[p]:] = pad_values[1]
    a, b = a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True)
    plan = sinkhorn(C, a, b, eps=0.08, tol=1e-14, max_iter=50000, method=method)
    for p in range(P):
        r, c = rows[p], cols[p]
        ref = _pot_sinkhorn(a[p, :r], b[p, :c], C[p, :r, :c], 0.08)
        assert (plan[p, :r, :c] - ref).abs().max() < 1e-8
        assert plan[p, r:, :].abs().max() == 0 if r < m else True
        assert plan[p, :, c:].abs().max() == 0 if c < n else True


@pytest.mark.parametrize("n_hard", [1, 3])  # the easy problem leaves the batch at once / stays in it, stopped
def test_sinkhorn_per_problem_convergence_independent_of_batch(solver_path, n_hard):
    gen = torch.Generator().manual_seed(3)
    easy = torch.rand(1, 8, 9, generator=gen, dtype=torch.float64) * 0.1
    hard = torch.rand(n_hard, 8, 9, generator=gen, dtype=torch.float64) * 3
    both, log = sinkhorn(torch.cat([easy, hard]), eps=0.05, tol=1e-10, log=True)
    alone = [sinkhorn(c[None], eps=0.05, tol=1e-10, log=True) for c in torch.cat([easy, hard])]
    assert bool((log["n_iter"][0] < log["n_iter"][1:]).all())  # stopped separately...
    assert log["n_iter"].tolist() == [lg["n_iter"][0].item() for _, lg in alone]
    for p, (plan, _) in enumerate(alone):  # ...with the plan it had alone
        assert torch.allclose(both[p], plan[0], rtol=0, atol=1e-15)


@pytest.mark.filterwarnings("ignore::trainers.optimal_transport.SinkhornCapWarning")  # capped on purpose
@pytest.mark.parametrize("eps", [1e-3, 1e-2, 0.1])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sinkhorn_half_inputs_small_eps_are_finite(eps, dtype):
    gen = torch.Generator().manual_seed(11)
    cost = (torch.rand(3, 40, 12, generator=gen) * 4).to(dtype)  # costs in [0, 4]
    b = torch.full((3, 12), 1 / 12)
    b[1, 9:] = 0  # one padded problem
    b[1] /= b[1].sum()
    plan, log = sinkhorn(cost, b=b, eps=eps, max_iter=300, log=True)
    assert plan.dtype == torch.float32
    assert bool(torch.isfinite(plan).all()) and bool((plan >= 0).all())
    # the column marginal is exact after every iteration, whatever the convergence of the rows
    assert (plan.sum(-2) - b).abs().max() < 1e-5
    assert plan[1, :, 9:].abs().max() == 0
    assert bool(log["log_domain"].all()) == (eps < 0.1)  # (max cost / eps) > 40 -> log domain
    if eps == 0.1:  # converged: equal to POT on the same (fp16-rounded) costs
        assert bool(log["converged"].all())
        ref = _pot_sinkhorn(torch.full((40,), 1 / 40, dtype=torch.float64), b[0].double(), cost[0].double(), eps,
                            stop=1e-8)
        assert (plan[0].double() - ref).abs().max() < 1e-5


@pytest.mark.filterwarnings("ignore::trainers.optimal_transport.SinkhornCapWarning")  # capped on purpose
def test_sinkhorn_kernel_overflow_falls_back_to_log_domain(monkeypatch):
    # Row 2 must send 0.8 of its mass through an entry of reduced cost 200 * eps: the scalings need a
    # factor e^200, beyond float32. (float64 POT can still do it with plain multiplicative updates.)
    L, eps = 2.0, 0.01
    cost = torch.tensor([[0.0, 0.0], [L, 0.0]])
    a, b = torch.tensor([0.1, 0.9]), torch.tensor([0.9, 0.1])
    ref = _pot_sinkhorn(a.double(), b.double(), cost.double(), eps, stop=1e-12)
    monkeypatch.setattr(otm, "SMALL_NUMPY_NUMEL", 0)  # iterate in torch float32, not the NumPy float64 path
    kernel = sinkhorn(cost, a, b, eps=eps, method="kernel", max_iter=200)
    assert not bool(torch.isfinite(kernel).all())  # plain multiplicative updates in float32 break down
    # make "auto" try the kernel first: the failure must be detected and the problem redone in log domain
    monkeypatch.setitem(otm.KERNEL_MAX_RANGE, torch.float32, 1e9)
    plan, log = sinkhorn(cost, a, b, eps=eps, max_iter=200, log=True)
    assert bool(log["log_domain"]) and bool(torch.isfinite(plan).all())
    assert (plan.double() - ref).abs().max() < 1e-6


def test_sinkhorn_builds_no_graph():
    cost = torch.rand(2, 5, 6, requires_grad=True)
    plan = sinkhorn(cost, eps=0.1)
    assert not plan.requires_grad and plan.grad_fn is None


# ------------------------------------------------------------------------------------------------
# Newton finish of slowly converging small problems (method "auto")
# ------------------------------------------------------------------------------------------------
def _near_permutation_costs(gen, P, n):
    """Costs whose entropic plans at eps 0.1 are close to the identity: Sinkhorn needs ~10^3 iterations."""
    return 1.0 - 0.6 * torch.eye(n, dtype=torch.float64) + 0.3 * torch.rand(P, n, n, generator=gen, dtype=torch.float64)


def test_newton_finish_matches_pot_where_sinkhorn_crawls(solver_path):
    gen = torch.Generator().manual_seed(5)
    C = _near_permutation_costs(gen, 3, 5)
    plain, log_plain = sinkhorn(C, eps=0.1, tol=1e-12, max_iter=100000, method="kernel", log=True)
    plan, log = sinkhorn(C, eps=0.1, tol=1e-12, max_iter=100000, log=True)
    assert bool(log["newton"].all()) and not bool(log_plain["newton"].any())
    assert bool(log["converged"].all()) and bool(log_plain["converged"].all())
    assert int(log_plain["n_iter"].min()) > 500  # Sinkhorn alone: hundreds of iterations...
    assert int(log["n_iter"].max()) < otm.NEWTON_AFTER + 15  # ...Newton: a few steps after the switch
    unif = torch.full((5,), 0.2, dtype=torch.float64)
    for p in range(3):
        ref = _pot_sinkhorn(unif, unif, C[p], 0.1, stop=1e-14)
        assert (plan[p] - ref).abs().max() < 1e-10
        assert (plain[p] - ref).abs().max() < 1e-10
    assert (plan.sum(-2) - 0.2).abs().max() < 1e-14  # column marginals exact, as after a Sinkhorn step


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_newton_from_any_gibbs_plan_with_padding(backend):
    # _newton itself, started far from the optimum (random scalings of the kernel): the line search must
    # make it converge; padded rows / columns (zero mass) stay zero.
    gen = torch.Generator().manual_seed(9)
    m, n, eps = 6, 5, 0.1
    C = _near_permutation_costs(gen, 2, 6)[:, :, :n]
    a, b = _simplex(gen, 2, m), _simplex(gen, 2, n)
    a[1, 4:], b[1, 3:] = 0, 0
    a, b = a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True)
    u = torch.exp(4 * torch.randn(2, m, 1, generator=gen, dtype=torch.float64))
    T0 = u * torch.exp(-C / eps) * (a[:, :, None] > 0) * (b[:, None, :] > 0)
    args = (T0, a, b) if backend == "torch" else (T0.numpy(), a.numpy(), b.numpy())
    plan, steps, err = otm._newton(*args, max_steps=100, tol=1e-12)
    plan, err = torch.as_tensor(plan), torch.as_tensor(err)
    assert bool((err < 1e-12).all()) and int(max(steps)) < 40
    for p, (r, c) in enumerate([(m, n), (4, 3)]):
        ref = _pot_sinkhorn(a[p, :r], b[p, :c], C[p, :r, :c], eps, stop=1e-14)
        assert (plan[p, :r, :c] - ref).abs().max() < 1e-10
        assert plan[p, r:].abs().max() == 0 if r < m else True
        assert plan[p, :, c:].abs().max() == 0 if c < n else True


@pytest.mark.filterwarnings("ignore::trainers.optimal_transport.SinkhornCapWarning")  # capped on purpose
def test_newton_keeps_tiny_entries_and_spares_log_domain_problems():
    gen = torch.Generator().manual_seed(3)
    C = torch.rand(6, 6, 5, generator=gen, dtype=torch.float64) * 4  # entries down to e^-400 at eps 0.01
    plan, log = sinkhorn(C, eps=0.01, tol=1e-10, max_iter=20000, log=True)
    assert bool(log["newton"].all()) and bool(log["converged"].all())
    unif_a, unif_b = torch.full((6,), 1 / 6, dtype=torch.float64), torch.full((5,), 0.2, dtype=torch.float64)
    for p in range(6):  # the Gibbs form survives Newton's rescalings by factors up to e^+-hundreds
        assert (plan[p] - _pot_sinkhorn(unif_a, unif_b, C[p], 0.01, stop=1e-13)).abs().max() < 1e-9
    # float32 log-domain problems (their plans underflow) are left to Sinkhorn: same result as method="log"
    C32 = C.float()
    plan, log = sinkhorn(C32, eps=1e-3, max_iter=300, log=True)
    assert bool(log["log_domain"].all()) and not bool(log["newton"].any())
    assert torch.equal(plan, sinkhorn(C32, eps=1e-3, max_iter=300, method="log"))


def test_newton_without_progress_falls_back_to_sinkhorn(monkeypatch):
    gen = torch.Generator().manual_seed(5)
    C = _near_permutation_costs(gen, 3, 5)
    plain, log_plain = sinkhorn(C, eps=0.1, tol=1e-10, method="kernel", log=True)

    def no_progress(T, a, b, *, max_steps, tol, reached_cap=None):  # e.g. a plan whose support underflowed
        err = np.full(len(T), np.nan)
        err[1] = 1e-12  # one problem does converge
        return T * 0 + 1, np.ones(len(T), dtype=np.int64), err

    monkeypatch.setattr(otm, "_newton", no_progress)
    plan, log = sinkhorn(C, eps=0.1, tol=1e-10, log=True)
    assert log["newton"].tolist() == [False, True, False]
    for p in (0, 2):  # redone by Sinkhorn iterations alone, with the full budget
        assert torch.equal(plan[p], plain[p]) and log["n_iter"][p] == log_plain["n_iter"][p]
    assert bool((plan[1] == 1).all())  # the problem Newton solved keeps Newton's plan


@pytest.mark.filterwarnings("ignore::trainers.optimal_transport.SinkhornCapWarning")  # capped on purpose
def test_newton_finish_in_a_mixed_batch_and_limits():
    gen = torch.Generator().manual_seed(6)
    hard = _near_permutation_costs(gen, 2, 4)
    easy = torch.rand(2, 4, 4, generator=gen, dtype=torch.float64) * 0.05  # converges in a few iterations
    C = torch.cat([hard, easy])
    plan, log = sinkhorn(C, eps=0.1, tol=1e-10, log=True)
    assert log["newton"].tolist() == [True, True, False, False]
    for p in range(4):  # each equals the problem solved alone
        alone = sinkhorn(C[p:p + 1], eps=0.1, tol=1e-10)
        assert (plan[p] - alone[0]).abs().max() < 1e-15
    # a cap within the Sinkhorn phase: no Newton, unconverged problems are reported as such
    _, log = sinkhorn(hard, eps=0.1, tol=1e-10, max_iter=otm.NEWTON_AFTER, log=True)
    assert not bool(log["newton"].any()) and not bool(log["converged"].any())
    assert log["n_iter"].tolist() == [otm.NEWTON_AFTER] * 2
    # a cap in the Newton phase is respected: Sinkhorn iterations + Newton steps <= max_iter
    _, log = sinkhorn(hard, eps=0.1, tol=1e-30, max_iter=otm.NEWTON_AFTER + 3, log=True)
    assert bool((log["n_iter"] <= otm.NEWTON_AFTER + 3).all()) and bool(log["newton"].all())
    # problems larger than NEWTON_MAX_DIM keep plain Sinkhorn
    big = torch.rand(1, 20, 20, generator=gen, dtype=torch.float64)
    _, log = sinkhorn(big, eps=0.01, tol=1e-10, max_iter=5000, log=True)
    assert not bool(log["newton"].any())


# ------------------------------------------------------------------------------------------------
# stop rule "upstream" against a straightforward loop of the released rule
# ------------------------------------------------------------------------------------------------
def reference_upstream(K, u, v, max_iter=100, thresh=1e-2):
    """One upstream call: K [B, m, n], u [B, m], v [B, n]; returns (plan, iterations, used_fallback)."""
    r, c = torch.ones_like(u), torch.ones_like(v)
    it = 0
    for it in range(1, max_iter + 1):
        r_prev = r
        r = u / torch.matmul(K, c.unsqueeze(-1)).squeeze(-1)
        c = v / torch.matmul(K.transpose(1, 2), r.unsqueeze(-1)).squeeze(-1)
        if (r - r_prev).abs().mean().item() < thresh:
            break
    T = r.unsqueeze(-1) * K * c.unsqueeze(-2)
    if torch.isnan(T).any():
        return K, it, True
    return T, it, False


@pytest.mark.parametrize("m,n", [(10, 4), (16, 12)])
def test_upstream_rule_single_call(m, n, solver_path):
    gen = torch.Generator().manual_seed(21)
    cost = 1 - torch.rand(50, m, n, generator=gen, dtype=torch.float64) * 0.8
    plan, log = sinkhorn(cost, eps=0.1, stop_rule="upstream", log=True)
    K = torch.exp(-cost / 0.1)
    ref, it, _ = reference_upstream(K, torch.full((50, m), 1 / m, dtype=torch.float64),
                                    torch.full((50, n), 1 / n, dtype=torch.float64))
    assert 1 < it < 100
    assert log["n_iter"].unique().tolist() == [it]
    assert (plan - ref).abs().max() < 1e-12


@pytest.mark.parametrize("pad_value", [float("nan"), 123.0, -3.0])
def test_upstream_rule_per_call_stops_and_padding(pad_value, solver_path):
    """ALIGN token level: one call per (image, class) over its M*N problems, L_c varying (padded)."""
    gen = torch.Generator().manual_seed(4)
    B, Cls, MN, P, Lmax = 2, 4, 4, 12, 7
    lengths = [7, 3, 5, 6]
    scale = [0.3, 1.5, 0.8, 1.2]  # different cost spreads -> different stopping iterations per call
    cost = torch.empty(B, Cls, MN, P, Lmax, dtype=torch.float64)
    for c in range(Cls):
        cost[:, c] = 1 - torch.rand(B, MN, P, Lmax, generator=gen, dtype=torch.float64) * scale[c]
    for c, L in enumerate(lengths):
        cost[:, c, :, :, L:] = pad_value  # padding content is ignored (123: its kernel underflows to 0)
    bmass = torch.zeros(Cls, Lmax, dtype=torch.float64)
    for c, L in enumerate(lengths):
        bmass[c, :L] = 1 / L
    b = bmass[None, :, None, :].expand(B, Cls, MN, Lmax)
    plan, log = sinkhorn(cost, b=b, eps=0.1, stop_rule="upstream", call_dims=2, log=True)
    iters = set()
    for i, c in itertools.product(range(B), range(Cls)):
        L = lengths[c]
        K = torch.exp(-cost[i, c, :, :, :L] / 0.1)
        ref, it, _ = reference_upstream(K, torch.full((MN, P), 1 / P, dtype=torch.float64),
                                        torch.full((MN, L), 1 / L, dtype=torch.float64))
        iters.add(it)
        assert (log["n_iter"][i, c] == it).all()
        assert (plan[i, c, :, :, :L] - ref).abs().max() < 1e-12
        assert plan[i, c, :, :, L:].abs().max() == 0 if L < Lmax else True
    assert len(iters) > 1  # the calls really stopped at different iterations
    # one global call over the same problems is a different rule, with different plans
    pooled = sinkhorn(cost, b=b, eps=0.1, stop_rule="upstream", call_dims=0)
    assert (pooled - plan).abs().max() > 1e-6


@pytest.mark.parametrize("n_calls", [1, 5])
def test_upstream_rule_with_delayed_stop_checks(n_calls):
    """The GPU path reads the stop flags only every k iterations; stopped calls must stay frozen."""
    gen = torch.Generator().manual_seed(31)
    spread = torch.linspace(0.3, 1.5, n_calls, dtype=torch.float64)[:, None, None, None]
    cost = 1 - torch.rand(n_calls, 6, 10, 4, generator=gen, dtype=torch.float64) * spread
    a = torch.full((n_calls * 6, 10), 0.1, dtype=torch.float64)
    b = torch.full((n_calls * 6, 4), 0.25, dtype=torch.float64)
    out = torch.empty(n_calls * 6, 10, 4, dtype=torch.float64)
    n_iter, _, _ = otm._upstream_calls(cost.reshape(-1, 10, 4), a, b, 0.1, n_calls, out, padded=False,
                                       max_iter=100, tol=1e-2, sync_every=7)
    for k in range(n_calls):
        ref, it, _ = reference_upstream(torch.exp(-cost[k] / 0.1), a[:6], b[:6])
        assert n_iter[k] == it
        assert (out[6 * k:6 * (k + 1)] - ref).abs().max() < 1e-12


@pytest.mark.filterwarnings("ignore::trainers.optimal_transport.SinkhornCapWarning")  # capped on purpose
def test_upstream_rule_nan_fallback_returns_kernel():
    gen = torch.Generator().manual_seed(8)
    cost = torch.rand(2, 3, 6, 5, generator=gen, dtype=torch.float64) * 4
    eps = torch.tensor([[0.1], [1e-3]])  # second call: the kernel underflows to 0 -> NaN plan upstream
    plans = [sinkhorn(cost[k], eps=float(eps[k]), stop_rule="upstream", log=True) for k in range(2)]
    for k in range(2):
        K = torch.exp(-cost[k] / float(eps[k]))
        ref, _, fell_back = reference_upstream(K, torch.full((3, 6), 1 / 6, dtype=torch.float64),
                                               torch.full((3, 5), 1 / 5, dtype=torch.float64))
        plan, log = plans[k]
        assert bool(log["fallback"].all()) == fell_back == (k == 1)
        if fell_back:
            assert torch.equal(plan, ref)
        else:
            assert (plan - ref).abs().max() < 1e-12


# ------------------------------------------------------------------------------------------------
# warning when a problem reaches the iteration cap unconverged
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def cap_warnings(monkeypatch):
    """Records every SinkhornCapWarning (Python's own filters off: only the module's registry dedups)."""
    monkeypatch.setattr(otm, "_CAP_WARNED_SITES", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield lambda: [w for w in caught if issubclass(w.category, SinkhornCapWarning)]


def _capped(log, max_iter):
    """Problems stopped unconverged at the cap, from the log."""
    return int(((log["n_iter"] == max_iter) & ~log["converged"]).sum())


@pytest.mark.parametrize("case", ["kernel", "log", "newton", "upstream", "upstream-calls"])
def test_sinkhorn_warns_once_per_call_site_when_capped(case, cap_warnings, solver_path):
    gen = torch.Generator().manual_seed(17)
    C = torch.rand(3, 12, 10, generator=gen, dtype=torch.float64)
    kw = {"kernel": dict(eps=0.05, max_iter=20), "log": dict(eps=1e-3, max_iter=20, method="log"),
          "newton": dict(eps=0.1, max_iter=otm.NEWTON_AFTER + 1, tol=1e-12),
          "upstream": dict(eps=0.05, max_iter=3, stop_rule="upstream"),
          "upstream-calls": dict(eps=0.05, max_iter=3, stop_rule="upstream", call_dims=1)}[case]
    if case == "newton":
        C = _near_permutation_costs(gen, 3, 5)
    for _ in range(3):  # one call site, three calls
        plan, log = sinkhorn(C, log=True, **kw)
    assert _capped(log, kw["max_iter"]) > 0  # the log agrees: problems stopped unconverged at the cap
    if case == "newton":
        assert bool(log["newton"].all())
    got = cap_warnings()
    assert len(got) == 1
    w = got[0]
    assert w.filename == __file__  # reported at the caller's line
    assert linecache.getline(w.filename, w.lineno).strip() == "plan, log = sinkhorn(C, log=True, **kw)"
    msg = str(w.message)
    assert f"max_iter={kw['max_iter']}" in msg and f"eps={kw['eps']:g}" in msg and "max_iter / eps" in msg
    assert ("calls" if case.startswith("upstream") else "problems") in msg
    sinkhorn(C, **kw)  # another call site: warned again
    assert len(cap_warnings()) == 2


@pytest.mark.parametrize("case", ["kernel", "newton", "log", "upstream"])
def test_sinkhorn_does_not_warn_when_converged(case, cap_warnings, solver_path):
    gen = torch.Generator().manual_seed(18)
    C = torch.rand(3, 24, 20, generator=gen, dtype=torch.float64)  # m + n > NEWTON_MAX_DIM: Sinkhorn only
    kw = {"kernel": dict(eps=0.5), "log": dict(eps=2e-3, max_iter=5000, method="log"),
          "newton": dict(eps=0.1, tol=1e-12), "upstream": dict(eps=0.5, stop_rule="upstream")}[case]
    if case == "newton":  # the Sinkhorn phase stops at NEWTON_AFTER unconverged: not the cap, no warning
        C = _near_permutation_costs(gen, 3, 5)
    plan, log = sinkhorn(C, log=True, **kw)
    assert bool(log["converged"].all())
    if "newton" in log:
        assert bool(log["newton"].all()) == (case == "newton")
    assert cap_warnings() == []


def test_sinkhorn_cap_warning_names_the_hint_and_uses_python_filters(monkeypatch):
    monkeypatch.setattr(otm, "_CAP_WARNED_SITES", set())
    C = torch.rand(2, 12, 10, generator=torch.Generator().manual_seed(19), dtype=torch.float64)
    with pytest.warns(SinkhornCapWarning, match=r"Raise the iteration cap or eps \(CFG\.EPS / CFG\.ITERS\)"):
        ot_value(C, method="sinkhorn", eps=0.05, max_iter=4, cap_hint="CFG.EPS / CFG.ITERS")
    # the message depends only on the arguments: Python's once-per-location filter also dedups it
    monkeypatch.setattr(otm, "_CAP_WARNED_SITES", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for _ in range(3):
            otm._CAP_WARNED_SITES.clear()
            sinkhorn(C, eps=0.05, max_iter=4)
    assert len([w for w in caught if issubclass(w.category, SinkhornCapWarning)]) == 1


# ------------------------------------------------------------------------------------------------
# Hungarian (assignment) solver
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", range(2, 11))
@pytest.mark.parametrize("fast_path", [True, False])
def test_hungarian_equals_emd(n, fast_path, monkeypatch):
    calls = []
    import scipy.optimize

    lsa = scipy.optimize.linear_sum_assignment
    monkeypatch.setattr(scipy.optimize, "linear_sum_assignment", lambda c: calls.append(1) or lsa(c))
    if not fast_path:
        monkeypatch.setattr(otm, "MAX_PERMUTATION_SIZE", 0)
    gen = torch.Generator().manual_seed(100 + n)
    C = torch.rand(2, 3, n, n, generator=gen, dtype=torch.float64)
    C[1, 2] = torch.randint(0, 3, (n, n), generator=gen).double()  # many ties
    plan = hungarian(C)
    assert plan.shape == C.shape and plan.dtype == torch.float64
    used_scipy = not (fast_path and n <= 6)
    assert len(calls) == (6 if used_scipy else 0)
    unif = ot.unif(n)
    for i, j in itertools.product(range(2), range(3)):
        emd = ot.emd(unif, unif, C[i, j].numpy())
        assert (plan[i, j] * C[i, j]).sum().item() == pytest.approx((emd * C[i, j].numpy()).sum(), abs=1e-13)
        # a permutation matrix / n
        assert sorted(plan[i, j].flatten().tolist()) == [0.0] * (n * n - n) + [1 / n] * n
        assert torch.equal(plan[i, j].sum(0), torch.full((n,), 1 / n, dtype=torch.float64))
        assert torch.equal(plan[i, j].sum(1), torch.full((n,), 1 / n, dtype=torch.float64))


def test_hungarian_half_cost_and_envelope_gradient():
    gen = torch.Generator().manual_seed(20)
    C = torch.rand(3, 8, 8, generator=gen).half().requires_grad_(True)
    value, plan = ot_value(C, method="hungarian", return_plan=True)
    value.sum().backward()
    assert plan.dtype == torch.float32 and value.shape == (3,)
    assert torch.equal(C.grad.float(), plan)
    for k in range(3):
        ref = ot.emd2(ot.unif(8), ot.unif(8), C[k].detach().double().numpy())
        assert value[k].item() == pytest.approx(ref, abs=1e-6)


def test_hungarian_rejects_what_it_cannot_solve():
    with pytest.raises(ValueError, match="square"):
        hungarian(torch.rand(4, 5))
    with pytest.raises(ValueError, match="uniform marginals"):
        ot_value(torch.rand(4, 4), torch.full((4,), 0.25), None, method="hungarian")
    with pytest.raises(TypeError, match="hungarian"):
        ot_value(torch.rand(4, 4), method="hungarian", eps=0.1)


# ------------------------------------------------------------------------------------------------
# exact OT
# ------------------------------------------------------------------------------------------------
def test_exact_ot_4x4_equals_min_over_permutations_and_emd2():
    gen = torch.Generator().manual_seed(12)
    C = torch.rand(20, 4, 4, generator=gen, dtype=torch.float64)
    plan = exact_ot(C)
    assert plan.shape == C.shape and plan.dtype == torch.float64
    for k in range(20):
        best = min(sum(C[k, i, s[i]].item() for i in range(4)) for s in itertools.permutations(range(4))) / 4
        value = (plan[k] * C[k]).sum().item()
        assert value == pytest.approx(best, abs=1e-14)
        assert value == pytest.approx(ot.emd2(ot.unif(4), ot.unif(4), C[k].numpy()), abs=1e-14)
        assert torch.allclose(plan[k].sum(0), torch.full((4,), 0.25, dtype=torch.float64))
        assert torch.allclose(plan[k].sum(1), torch.full((4,), 0.25, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(3, 6, 6), (3, 7, 7), (3, 5, 8)])
def test_exact_ot_uniform_equals_emd2(shape):
    gen = torch.Generator().manual_seed(sum(shape))
    C = torch.rand(*shape, generator=gen, dtype=torch.float64)
    plan = exact_ot(C)
    m, n = shape[1:]
    for k in range(shape[0]):
        assert (plan[k] * C[k]).sum().item() == pytest.approx(ot.emd2(ot.unif(m), ot.unif(n), C[k].numpy()), abs=1e-12)


def test_exact_ot_marginals_and_padding_equal_emd2():
    gen = torch.Generator().manual_seed(13)
    C = torch.rand(4, 6, 5, generator=gen, dtype=torch.float64)
    a, b = _simplex(gen, 4, 6), _simplex(gen, 4, 5)
    a[1, 4:] = 0
    b[2, 3:] = 0
    a, b = a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True)
    plan = exact_ot(C, a, b)
    for k in range(4):
        r, c = a[k] > 0, b[k] > 0
        ref = ot.emd2(a[k][r].numpy(), b[k][c].numpy(), C[k][r][:, c].numpy())
        assert (plan[k] * C[k]).sum().item() == pytest.approx(ref, abs=1e-12)
        assert plan[k][~r].abs().sum() == 0 and plan[k][:, ~c].abs().sum() == 0
        assert torch.allclose(plan[k].sum(1), a[k]) and torch.allclose(plan[k].sum(0), b[k])


def test_exact_ot_half_input_on_float32():
    C = torch.rand(2, 4, 4).half()
    plan = exact_ot(C)
    assert plan.dtype == torch.float32
    ref = exact_ot(C.double())
    assert torch.equal(plan.double(), ref)


# ------------------------------------------------------------------------------------------------
# envelope gradient
# ------------------------------------------------------------------------------------------------
def _finite_difference(f, C, h):
    grad = torch.zeros_like(C)
    for idx in itertools.product(*map(range, C.shape)):
        Cp, Cm = C.clone(), C.clone()
        Cp[idx] += h
        Cm[idx] -= h
        grad[idx] = (f(Cp) - f(Cm)) / (2 * h)
    return grad


def test_envelope_gradient_exact_equals_finite_difference_of_emd2():
    gen = torch.Generator().manual_seed(14)
    for shape in [(4, 4), (4, 5)]:
        C = torch.rand(*shape, generator=gen, dtype=torch.float64)
        a, b = ot.unif(shape[0]), ot.unif(shape[1])
        X = C.clone().requires_grad_(True)
        value = ot_value(X)
        value.backward()
        assert value.item() == pytest.approx(ot.emd2(a, b, C.numpy()), abs=1e-14)
        fd = _finite_difference(lambda M: ot.emd2(a, b, M.numpy()), C, 1e-6)
        assert (X.grad - fd).abs().max() < 1e-7


def test_envelope_gradient_sinkhorn_equals_finite_difference_of_entropic_objective():
    gen = torch.Generator().manual_seed(15)
    C = torch.rand(5, 4, generator=gen, dtype=torch.float64)
    a, b = _simplex(gen, 5), _simplex(gen, 4)
    eps = 0.2

    def objective(M):  # POT's entropic OT objective at its optimum
        T = _pot_sinkhorn(a, b, M, eps)
        return float((T * M).sum() + eps * (T * torch.log(T)).sum())

    X = C.clone().requires_grad_(True)
    value = ot_value(X, a, b, method="sinkhorn", eps=eps, tol=1e-15, max_iter=100000)
    value.backward()
    T = _pot_sinkhorn(a, b, C, eps)
    assert value.item() == pytest.approx(float((T * C).sum()), abs=1e-12)
    fd = _finite_difference(objective, C, 1e-5)
    assert (X.grad - fd).abs().max() < 1e-8


def test_envelope_gradient_batched_half_cost():
    gen = torch.Generator().manual_seed(16)
    C = torch.rand(3, 4, 4, generator=gen).half().requires_grad_(True)
    value, plan = ot_value(C, return_plan=True)
    value.sum().backward()
    assert value.shape == (3,) and value.dtype == torch.float32
    assert torch.equal(C.grad.float(), plan)  # the plan entries (1/4 or 0) are exact in fp16
